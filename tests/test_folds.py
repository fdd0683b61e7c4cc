"""Cross-validation folds: stratified, disjoint, covering every labelled image, seeded, and
byte-identical from one run (or backend: numpy alone draws them) to the next."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augcache.data.folds import assign_folds, fold_mask, labelled_rows, read_folds, write_folds



# the folds file of index() with 3 folds and seed 42, as every run writes it
GOLDEN = "89ca3cf96b82e166ae4e17ac8694a90278a8cc6b74aaa4c3cf3372855f65b662"


def index(n=103, classes=(("ant", 0.6), ("bee", 0.3), ("cat", 0.1)), test=7):
    rng = np.random.default_rng(5)
    labels = rng.choice([c for c, _ in classes], size=n, p=[p for _, p in classes])
    rows = pd.DataFrame({"sample_id": [f"{label}/img_{i:04d}.jpg" for i, label in enumerate(labels)],
                         "label": labels, "split": np.where(rng.random(n) < 0.25, "val", "train")})
    tests = pd.DataFrame({"sample_id": [f"test/{i}.jpg" for i in range(test)], "label": "ant", "split": "test"})
    return pd.concat([rows, tests], ignore_index=True)


def test_folds_are_stratified_disjoint_and_cover_every_labelled_image():
    table = index()
    labelled = labelled_rows(table, folds=5)
    assert set(labelled["split"]) == {"train", "val"} and len(labelled) == 103
    assert set(labelled_rows(table, folds=0)["split"]) == {"train"}
    folds = assign_folds(labelled, 5, seed=42)
    # every labelled image once, no test image
    assert sorted(folds["sample_id"]) == sorted(labelled["sample_id"])
    assert folds["sample_id"].is_unique
    assert set(folds["fold"]) == set(range(5))
    sizes = folds["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    for label, group in folds.groupby("label"):
        per_fold = group["fold"].value_counts().reindex(range(5), fill_value=0)
        assert per_fold.max() - per_fold.min() <= 1, label


def test_folds_depend_on_the_seed_alone_and_keep_their_bytes(tmp_path):
    labelled = labelled_rows(index(), folds=3)
    digests = []
    for name, rows in (("a", labelled), ("b", labelled.sample(frac=1, random_state=1))):
        write_folds(assign_folds(rows, 3, seed=42), tmp_path / f"{name}.csv")
        digests.append(hashlib.sha256((tmp_path / f"{name}.csv").read_bytes()).hexdigest())
    # the rows' order in the index does not matter, and the bytes are those of every earlier run
    assert digests[0] == digests[1]
    assert digests[0] == GOLDEN
    other = assign_folds(labelled, 3, seed=43)
    assert not np.array_equal(other["fold"], assign_folds(labelled, 3, seed=42)["fold"])


def test_a_fold_mask_follows_a_stores_rows_and_names_an_unknown_image(tmp_path):
    folds = assign_folds(labelled_rows(index(), folds=4), 4, seed=0)
    write_folds(folds, tmp_path / "folds.csv")
    back = read_folds(tmp_path / "folds.csv")
    ids = list(folds["sample_id"][::-1])
    mask = fold_mask(ids, back, 2)
    assert mask.sum() == (folds["fold"] == 2).sum()
    assert all(back[i] == 2 for i, m in zip(ids, mask) if m)
    with pytest.raises(ValueError, match=r"folds.csv: no fold for \['new/1.jpg'\]"):
        fold_mask([*ids, "new/1.jpg"], back, 2, tmp_path / "folds.csv")


def test_too_few_folds_or_images_are_refused():
    with pytest.raises(ValueError, match="eval.folds: 1 fold"):
        assign_folds(labelled_rows(index(), 1), 1, seed=0)
    with pytest.raises(ValueError, match="only 4 labelled images"):
        assign_folds(labelled_rows(index(n=4, test=0), 5), 5, seed=0)


# --- the workflow with eval.folds ------------------------------------------------------------------

def planned_jobs(flow, config) -> dict[str, list[str]]:
    """{rule: the input lines of each of its jobs} of a dry run."""
    out = flow.run(config, "-n", "--forceall").stdout
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in out.splitlines():
        stripped = line.strip()
        if stripped.startswith(("rule ", "localrule ")) and stripped.endswith(":"):
            rule = stripped.split()[1].rstrip(":")
            jobs.setdefault(rule, [])
        elif rule and stripped.startswith("input:"):
            jobs[rule].append(stripped.removeprefix("input:").strip())
    return jobs


EXTRACTING = ("write_manifest", "extract_epoch", "extract_val", "extract_noaug", "merge_epochs")


def test_folds_plan_the_same_extraction_jobs_whatever_their_number_and_fold_runs_read_the_shared_stores(
        workflow, tiny_data, tiny_base):
    from conftest import folds_config

    plans = {(f, r): planned_jobs(workflow, folds_config(tiny_data, tiny_base, folds=f, repeats=r))
             for f, r in ((0, 1), (3, 2), (5, 2))}
    counts = {run: {rule: len(plan.get(rule, [])) for rule in EXTRACTING} for run, plan in plans.items()}
    # the extraction jobs of one split and one repeat, whatever F, and whatever the repeats of the folds
    assert counts[(0, 1)] == counts[(3, 2)] == counts[(5, 2)], counts
    assert counts[(3, 2)]["extract_epoch"] == 2 and counts[(3, 2)]["write_manifest"] == 2  # K=2, one cache
    plans = {0: plans[(0, 1)], 3: plans[(3, 2)], 5: plans[(5, 2)]}
    # folds add heads only: three fold runs per mode, K and repeat (one for the replay check), and
    # and the cached run of K=2 and repeat 0 becomes the head refit on every labelled image, which
    # the export takes
    assert len(plans[3]["train_cached"]) == 2 * 3 + 1 and len(plans[5]["train_cached"]) == 2 * 5 + 1
    assert len(plans[3]["train_onthefly"]) == 2 * 3 and len(plans[3]["train_replay"]) == 1
    assert len(plans[3]["write_folds"]) == 2 and "write_folds" not in plans[0]
    # every cached run (each fold and repeat, and the refit head) trains on the same two epoch stores
    stores = [sorted(p for p in inputs.split(", ") if "/features/train/epoch_" in p)
              for inputs in plans[3]["train_cached"]]
    assert len(stores) == 2 * 3 + 1 and all(s == stores[0] for s in stores) and len(stores[0]) == 2
    folds_runs = [i for i in plans[3]["train_cached"] if "manifest/folds.csv" in i]
    assert len(folds_runs) == 6 and all("results/features/train_noaug.h5" in i for i in folds_runs)


def test_fold_runs_cover_every_labelled_image_once_and_the_report_pairs_them_fold_by_fold(folded):
    import json

    from augcache.data.dataset import read_index
    from augcache.report.compared import final_outcomes, paired, points
    from report_fixture import visible_text

    config, flow = folded
    index = read_index(flow.path("results/dataset/index.csv"))
    labelled = index[index["split"].isin(["train", "val"])]
    assert len(labelled) == 24
    # the epochs and the unaugmented store cover every labelled image
    assert len(pd.read_csv(flow.path("results/manifest/epoch_0.csv"))) == 24
    repeats = config["train"]["repeats"]
    folds = [read_folds(flow.path(f"results/{'repeat_%d/' % r if r else ''}manifest/folds.csv")) for r in range(repeats)]
    assert all(sorted(f.index) == sorted(labelled["sample_id"]) for f in folds)
    # the split recorded is the one the seed draws (repeat r's from seed + r: a new one)
    drawn = assign_folds(labelled, 3, config["seed"]).set_index("sample_id")["fold"]
    assert folds[0].equals(drawn.reindex(folds[0].index))
    assert not folds[0].equals(assign_folds(labelled, 3, config["seed"] + 1).set_index("sample_id")["fold"]
                               .reindex(folds[0].index))
    evaluation = json.loads(flow.path("results/eval/heads.json").read_text())
    for mode, run in (("cached", "k2_r{r}_f{f}"), ("onthefly", "r{r}_f{f}"), ("noaug", "r{r}_f{f}")):
        for r in range(repeats):
            scored = 0
            for f in range(3):
                summary = json.loads(flow.path(f"results/train/{mode}/{run.format(r=r, f=f)}/summary.json").read_text())
                size = int((folds[r] == f).sum())
                assert (summary["fold"], summary["n_train"]) == (f, 24 - size)
                row = next(x for x in evaluation["runs"] if x["head"] == "final"
                           and x["run"].endswith(f"/{mode}/{run.format(r=r, f=f)}"))
                assert row["n_scored"] == len(row["correct"]) == len(row["tta_correct"]) == size
                assert row["accuracy"] == pytest.approx(summary["final_val_accuracy"], abs=1e-6)
                scored += size
            assert scored == 24
    # the verdict's interval is the corrected resampled t of the fold differences, computed again
    outcomes = final_outcomes(evaluation)
    assert set(outcomes[("cached", 2)]) == {(r, f) for r in range(repeats) for f in range(3)}
    difference = paired(outcomes, ("cached", 2), ("onthefly", None))
    assert (difference.folds, difference.repeats, difference.n) == (3, repeats, 3 * repeats)
    text = visible_text(flow.path("results/report/report.html").read_text())
    assert points(difference) in text and "3 folds × 1 repeat)" in text
    assert "Cross-validation ( eval.folds )" in text and "reproduces the cached run (K=2, repeat 0)" in text
    # the test-time view covers every labelled image, row for row the unaugmented store
    from augcache.evaluation.scoring import sample_ids

    assert sample_ids(flow.path("results/features/val_tta/view_0.h5")) == \
        sample_ids(flow.path("results/features/train_noaug.h5"))
    # the k-NN classifier scores each fold of repeat 0 against the other folds' rows of each bank,
    # compared with on the fly fold by fold
    from augcache.report.compared import knn_paired
    from augcache.report.page import _interval

    knn = json.loads(flow.path("results/eval/knn.json").read_text())
    for bank in knn["banks"]:
        assert [len(x["correct"]) for x in bank["fold_correct"]] == [int((folds[0] == f).sum()) for f in range(3)]
        d = knn_paired(bank, outcomes, ("onthefly", None))
        assert (d.folds, d.repeats) == (3, 1) and _interval(d) in text
    assert knn["banks"][0]["bank_rows"] == 24 and knn["banks"][1]["bank_rows"] == 48
    # the sweep's point is chosen by its fold runs, and the exported head is that point's refit on
    # every labelled image, kept at the epoch its folds chose
    selection = json.loads(flow.path("results/sweep/selection.json").read_text())
    table = pd.read_csv(flow.path("results/sweep/sweep.csv"))
    means = {}
    for point in table["point"]:
        runs = [json.loads(flow.path(f"results/sweep/{point}/r{r}_f{f}/summary.json").read_text())
                for r in range(repeats) for f in range(3)]
        means[point] = np.mean([s["best_val_accuracy"] for s in runs])
    assert set(table["repeats"]) == {3 * repeats} and selection["point"] == table["point"].iloc[0]
    assert means[selection["point"]] == pytest.approx(max(means.values()))
    assert selection["run_dir"] == f"results/sweep/{selection['point']}/r0" and "3 folds × 1 repeat)" in selection["why"]
    refit = json.loads(flow.path(f"{selection['run_dir']}/summary.json").read_text())
    assert refit["n_train"] == 24 and refit["refit"]["fold_runs"] == 3 * repeats
    assert selection["epoch"] == refit["best_epoch"] == refit["refit"]["epoch"]
    curves = [pd.read_csv(flow.path(f"results/sweep/{selection['point']}/r{r}_f{f}/metrics.csv"))
              for r in range(repeats) for f in range(3)]
    mean = pd.concat(curves).groupby("epoch")["val_accuracy"].mean().to_numpy()
    assert refit["refit"]["epoch"] == int(np.argmax(mean))
    assert not flow.path("results/train/cached/k2_r0").exists()  # no refit of the cached mode's own head
    assert "Each interval: a corrected resampled t over 3 fold differences." in text
    assert re.search(r"Cross-validated, cached augmentation's runs took \d+ s together and on the fly's \d+ s "
                     r"\(\d+\.\d× (faster|slower)\)", text)
    # the notebook's table of modes is the fold runs', the refit heads left out
    from augcache.api import open_run

    modes = open_run(flow.path("results")).modes()
    assert set(modes["repeats"]) == {3, 1}  # 3 folds × 1 repeat; the replay check's fold 0
    # fold runs are kept like any run: nothing is left to do
    assert "Nothing to be done" in flow.run(config, "-n").stdout


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_folds_have_the_same_bytes_under_every_keras_backend(tmp_path, backend):
    """The folds job runs under the run's backend: numpy alone draws them, so the bytes are those
    of the golden hash above whichever backend Keras was started with."""
    import os
    import subprocess
    import sys

    table = labelled_rows(index(), folds=3)
    table.to_csv(tmp_path / "rows.csv", index=False)
    code = ("import keras, sys, pandas as pd; assert keras.backend.backend() == sys.argv[1]; "
            "from augcache.data.folds import assign_folds, write_folds; "
            "write_folds(assign_folds(pd.read_csv(sys.argv[2], dtype=str), 3, seed=42), sys.argv[3])")
    subprocess.run([sys.executable, "-c", code, backend, str(tmp_path / "rows.csv"), str(tmp_path / "f.csv")],
                   check=True, env=dict(os.environ, KERAS_BACKEND=backend), cwd=Path(__file__).resolve().parents[1])
    assert hashlib.sha256((tmp_path / "f.csv").read_bytes()).hexdigest() == GOLDEN


def test_folds_a_config_cannot_have_are_refused_naming_the_key(tmp_path):
    from snakemake.utils import validate

    from augcache.jobs.settings import SCHEMA, Settings

    def check(**sections):
        config = {"data": {"dir": str(tmp_path)}, **sections}
        validate(config, str(SCHEMA), set_default=True)
        Settings(config).check()

    check(eval={"folds": 3}, head_sweep={"learning_rate": [0.1, 0.01]})  # a sweep chosen by the folds
    with pytest.raises(ValueError, match=r"eval.folds: 1 fold; cross-validation needs at least 2 \(0: off\)"):
        check(eval={"folds": 1})
    with pytest.raises(ValueError, match="eval.folds: cross-validation does not combine with variants yet"):
        check(eval={"folds": 3}, variants={"v": {"augment": {"rotation_range": 5}}})


@pytest.mark.parametrize("mode, run", [("cached", "k2_r0_f1"), ("noaug", "r0_f1")])
def test_a_fold_run_streamed_from_its_stores_matches_it_held_in_memory(folded, tmp_path, mode, run):
    """A fold's rows of the epoch stores (each in its manifest's order) and of the unaugmented store
    (shuffled among themselves), and its validation rows, read in blocks as from memory."""
    import json

    from augcache.augmentation.manifest import AugmentConfig
    from augcache.base.conv_base import BaseSpec
    from augcache.base.store_fields import CacheConfig
    from augcache.training.experiment import RunInputs, RunOutputs, RunSpec, TrainingConfig, run_training
    from augcache.training.head import HeadConfig
    from augcache.training.modes import mode as mode_of

    config, flow = folded
    k = config["cache"]["k"] if mode == "cached" else 0
    out = tmp_path / run
    out.mkdir()
    run_training(
        RunSpec(mode=mode, k=k, repeat=0, seed=config["seed"], folds=3, fold=1),
        RunInputs(index=flow.path("results/dataset/index.csv"), val_store=flow.path("results/features/val.h5"),
                  train_stores=tuple(flow.path(s) for s in mode_of(mode).stored.run_inputs(k, 0)["stores"]),
                  manifests=tuple(flow.path(f"results/manifest/epoch_{e}.csv") for e in range(k)),
                  folds=flow.path("results/manifest/folds.csv"),
                  fold_val=flow.path("results/features/train_noaug.h5")),
        TrainingConfig(spec=BaseSpec.from_config({**config["conv_base"], "image_size": config["data"]["image_size"],
                                                  "seed": config["seed"]}),
                       aug=AugmentConfig.from_config(config["augment"]),
                       cache=CacheConfig(dtype=config["cache"]["dtype"], batch_size=config["cache"]["batch_size"]),
                       head=HeadConfig.from_config(config["head"]), memory_budget_mb=0.01),
        RunOutputs(head=out / "head.keras", best_head=out / "best_head.keras", metrics=out / "metrics.csv",
                   summary=out / "summary.json"),
    )
    summary = json.loads((out / "summary.json").read_text())
    kept = json.loads(flow.path(f"results/train/{mode}/{run}/summary.json").read_text())
    assert summary["features_from"] == "stream" and kept["features_from"] == "memory"
    assert (summary["fold"], summary["n_train"]) == (kept["fold"], kept["n_train"])
    streamed, in_memory = pd.read_csv(out / "metrics.csv"), pd.read_csv(flow.path(f"results/train/{mode}/{run}/metrics.csv"))
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(streamed[column], in_memory[column], rtol=1e-5, atol=1e-6)
