"""Side-by-side variants of the cache: each under results/variants/{name}/, computed once, never
touching the default cache, compared in one report."""

import hashlib
import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, digests, full_config

from test_workflow import scheduled_jobs


def test_a_variant_runs_beside_the_default_cache_and_is_reported(varied):
    flow = varied["flow"]
    jobs = [rule for rule, _ in scheduled_jobs(varied["planned"])]
    own = {"make_report", "all", "track_runs", "tensorboard_logs"}
    assert jobs and all(rule.startswith("variant_rot10_") or rule in own for rule in jobs), jobs
    assert "variant_rot10_extract_epoch" in jobs and "extract_epoch" not in jobs

    default = varied["before"]
    assert {part: digests(flow.path(f"results/{part}")) for part in default} == default
    variant = flow.path("results/variants/rot10/results")
    import pandas as pd

    ours = pd.read_csv(flow.path("results/manifest/epoch_0.csv"))
    theirs = pd.read_csv(variant / "manifest/epoch_0.csv")
    assert (theirs["rotation"].abs() <= 10).all() and (ours["rotation"].abs() > 10).any()
    assert (variant / "features/train/epoch_1.h5").exists()
    # what the variant shares with the default cache is reused, not computed again
    for log in ("index_dataset.log", "check_conv_base/*.log", "extract/val.log"):
        assert re.search(r"reused [0-9a-f]{64}", next((variant / "logs").glob(log)).read_text()), log
    assert "img/s" in (variant / "logs/extract/epoch_0.log").read_text()  # its own augmentation: computed
    report = flow.path("results/report/report.html").read_text()
    assert 'data-variant="default"' in report and 'data-variant="rot10"' in report
    check_variant_tracked(flow, varied["database"], variant)
    # the variant's test-time evaluation, asked for alone, scores the variant's own heads, not the main run's
    scored = json.loads((variant / "eval/heads.json").read_text())["runs"]
    assert scored and all(row["run"].startswith("results/variants/rot10/results/") for row in scored)
    for row in (r for r in scored if r["head"] == "final"):
        summary = json.loads(flow.path(f"{row['run']}/summary.json").read_text())
        assert row["accuracy"] == pytest.approx(summary["final_val_accuracy"])
    # computed once: nothing more to do
    assert not scheduled_jobs(varied["again"])


def check_variant_tracked(flow, database, variant):
    """The variant's cached runs in MLflow, tagged with the variant, with its own settings and
    manifests, beside the main run's; and among the TensorBoard logs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    runs = client.search_runs([client.get_experiment_by_name("variants").experiment_id], max_results=100)
    ours = {r.info.run_name: r for r in runs if r.data.tags.get("variant") == "rot10"}
    main = [r for r in runs if r.data.tags.get("variant") == "" and "augcache.key" in r.data.tags]
    assert sorted(ours) == ["rot10/cached/k2_r0", "rot10/cached/k2_r1"] and main
    for run in ours.values():
        assert json.loads(run.data.params["augment.rotation_range"]) == 10
        repeat = int(run.data.tags["repeat"])
        manifest = variant / f"{'repeat_%d/' % repeat if repeat else ''}manifest/epoch_0.csv"
        assert run.data.tags["manifest_0_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert all(json.loads(r.data.params["augment.rotation_range"]) == 25 for r in main)
    parent = next(r for r in runs if r.data.tags.get("augcache.role") == "workflow")
    # each file under its own folder: the variant's manifests, and each repeat's, apart
    folders = ("manifest", "repeat_1/manifest", "variants/rot10/results/manifest",
               "variants/rot10/results/repeat_1/manifest")
    assert {a.path for folder in folders for a in client.list_artifacts(parent.info.run_id, folder)} >= {
        f"{folder}/epoch_{e}.csv" for folder in folders for e in (0, 1)}
    logged = json.loads(flow.path("results/tracking/tensorboard.json").read_text())["runs"]
    assert "variants/rot10/results/train/cached/k2_r0" in logged and "train/cached/k2_r0" in logged
    assert flow.path("results/tracking/tensorboard/variants/rot10/results/train/cached/k2_r0/validation").is_dir()


def ping_pong_config():
    """The demo at its smallest (its own images and base, made by the workflow), one cached run, and
    a variant; pixels kept at 160 px so the pixel store exceeds the 1 MB under which Snakemake
    compares checksums instead of times."""
    return {
        "seed": 1,
        "data": {"dir": "demo", "image_size": [32, 32], "pixel_size": [160, 160]},
        "demo": {"image_size": 32, "train_per_class": 4, "val_per_class": 2, "base_pretext_per_class": 8,
                 "base_epochs": 1},
        "cache": {"k": 2, "dtype": "float32", "batch_size": 8, "epochs_per_job": 1},
        "head": {"hidden_units": [8], "epochs": 2, "batch_size": 6},
        "train": {"modes": ["cached"], "sweep_k": [], "repeats": 1},
        "variants": {"rot10": {"augment": {"rotation_range": 10}}},
    }


def test_a_variant_alone_then_the_main_run_then_everything_never_runs_a_job_twice(tmp_path):
    """The variant's run asked for alone, from nothing (its jobs read their own demo images and base,
    never the main run's), then the main run's, then each again, then everything: each invocation
    runs only jobs that never ran before, and the last has nothing to do. Snakemake judges by times
    alone here (--max-checksum-file-size 0), as it does for stores over 1 MB."""
    from conftest import Workflow

    flow = Workflow(tmp_path / "project")
    config = ping_pong_config()
    by_time = ("--max-checksum-file-size", "0")
    variant = "results/variants/rot10/results/train/cached/k2_r0/summary.json"
    main = "results/train/cached/k2_r0/summary.json"
    ran: list[str] = []

    def step(*targets):
        jobs = [rule for rule, _ in scheduled_jobs(flow.run(config, *targets, "-n", *by_time).stdout)]
        again = sorted(set(jobs) & set(ran))
        assert not again, f"{targets or 'all'} runs again: {again}"
        flow.run(config, *targets, *by_time)
        ran.extend(jobs)
        return jobs

    first = step(variant)
    assert first and all(rule.startswith("variant_rot10_") for rule in first), first
    assert not flow.path("results/demo").exists()  # the main run's files were never needed
    second = step(main)
    assert second and not any(rule.startswith("variant_") for rule in second), second
    for target in (variant, main):
        assert "Nothing to be done" in flow.run(config, target, "-n", *by_time).stdout, target
    assert "make_report" in step()
    assert "Nothing to be done" in flow.run(config, "-n", *by_time).stdout
    # what the runs share was made once: the main run put the variant's demo base in place, as a
    # file of its own; each indexed its own images (the index names them)
    assert re.search(r"reused [0-9a-f]{64}", flow.path("results/logs/make_demo_base.log").read_text())
    bases = [flow.path(p) for p in ("results/demo/base.keras", "results/variants/rot10/results/demo/base.keras")]
    assert bases[0].read_bytes() == bases[1].read_bytes() and bases[0].stat().st_ino != bases[1].stat().st_ino
    index = flow.path("results/dataset/index.csv").read_text()
    assert "results/demo/images/" in index and "variants" not in index
    assert flow.path("results/dataset/pixels.h5").stat().st_size > 1 << 20


def test_every_job_is_filed_as_the_table_of_jobs_says(planned_dag):
    """Every planned job (the main run's and a variant's) has the log and benchmark its entry of
    the table of jobs gives, and runs its entry's script; every entry but those the plans do not
    need (several epochs in one job, predictions, the ImageNet weights, the test images' scores) is
    planned."""
    import string

    from augcache.jobs.table import JOBS

    def entry(rule):
        if rule in JOBS and not JOBS[rule].rules:
            return JOBS[rule], {}
        for job in (j for j in JOBS.values() if j.rules):
            pattern = re.escape(job.rules or job.name).replace(r"\{", "{").replace(r"\}", "}")
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
            if re.fullmatch(pattern, rule):
                return job, re.fullmatch(pattern, rule).groupdict()
        raise AssertionError(f"rule {rule} is in no entry of the table of jobs")

    planned = set()
    for job in planned_dag:
        rule = job["rule"].removeprefix("variant_rot10_")
        prefix = "results/variants/rot10/" if job["rule"] != rule else ""
        if rule in ("all", "variant_rot10_all"):
            continue
        table, _ = entry(rule)
        planned.add(table.name)
        assert job["script"] == table.script, job
        # the entry's name, its fields filled with the job's values, is the log's and the benchmark's
        fields = [f for _, f, _, _ in string.Formatter().parse(table.filed_as) if f]
        pattern = re.escape(table.filed_as)
        for field in fields:
            optional = {"repeat_dir": r"(repeat_\d+/)?", "fold": r"(_f\d+)?"}
            pattern = pattern.replace(re.escape("{" + field + "}"), optional.get(field, r"[^/]+"))
        assert re.fullmatch(f"{prefix}results/logs/{pattern}\\.log", job["log"][0]), job
        assert job["benchmark"] == f"{prefix}results/benchmarks/{job['log'][0].split('results/logs/', 1)[1][:-4]}.tsv", job
    assert set(JOBS) - planned == {"extract_epochs", "predict", "fetch_weights", "score_test"}


def paths_the_workflow_writes(value, where="params"):
    """(where, text) of every string inside value (nested mappings and lists) that names a path
    below results/: what a variant's module rewrites in inputs and outputs, and never in params."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_the_workflow_writes(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for number, item in enumerate(value):
            yield from paths_the_workflow_writes(item, f"{where}[{number}]")
    elif isinstance(value, str) and ("results/" in value or value.startswith("results")):
        yield where, value


def planned_params(flow, config, *targets) -> list[dict]:
    """Every job of the DAG of targets (all of it, as with --forceall) with its evaluated params."""
    overlay = flow.path("overlay.yaml")
    overlay.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "dag_params.py"), str(overlay), *targets],
                            cwd=flow.root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def planned_dag(tmp_path_factory, tiny_data, tiny_base) -> list[dict]:
    """The jobs of a main run and a variant (with the demo's own images and base, test-time views,
    a sweep, decode and extraction shards), and of a run with eval.folds and tracking, planned
    without running."""
    from conftest import Workflow, folds_config

    config = full_config(tiny_data, tiny_base)
    config["data"] = {"dir": "demo", "image_size": [32, 32], "decode_shards": 2}
    config["conv_base"] = {"architecture": "demo"}
    config["cache"] |= {"shards_per_epoch": 2}
    config["head_sweep"] = {"learning_rate": [0.01, 0.001]}
    config["variants"] = {"rot10": {"augment": {"rotation_range": 10}}}
    folds = planned_params(Workflow(tmp_path_factory.mktemp("dag_folds") / "project"),
                           folds_config(tiny_data, tiny_base, tracking={"mlflow": {"uri": "sqlite:///mlflow.db"},
                                                                        "tensorboard": True}),
                           "all")
    return planned_params(Workflow(tmp_path_factory.mktemp("dag") / "project"), config, "all",
                          "variant_rot10_all") + folds


def test_no_rule_is_given_a_path_through_params(planned_dag):
    """Paths reach jobs only as inputs and outputs: no job of the main run or of a variant has a
    param naming a file the workflow writes."""
    jobs = planned_dag
    rules = {job["rule"] for job in jobs}
    for rule in ("evaluate_heads", "select_head", "index_dataset", "check_conv_base", "extract_shard",
                 "train_cached", "train_sweep_point", "export_model", "make_report"):
        assert rule in rules and f"variant_rot10_{rule}" in rules, rule
    offenders = [(job["rule"], where, text) for job in jobs
                 for where, text in paths_the_workflow_writes(job["params"])]
    assert not offenders, offenders
