"""Head training, baselines, export, prediction and the report, on a tiny config."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augcache.core.provenance import ProvenanceError
from augcache.report.tables import REPLAY_TOLERANCE, replay_verdict
from augcache.store.features import read_attrs
from augcache.training.train import CachedEpochs, EpochStream
from conftest import SIZE
from test_workflow import scheduled_jobs


def metrics(flow, run):
    return pd.read_csv(flow.path(f"results/train/{run}/metrics.csv"))


def test_replay_reproduces_the_cached_run_epoch_by_epoch(full_run):
    _, flow = full_run
    cached, replay = metrics(flow, "cached/k2_r0"), metrics(flow, "replay/k2_r0")
    assert len(cached) == 4
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(replay[column], cached[column], rtol=1e-5, atol=1e-6)
    verdict = replay_verdict(cached, replay)
    assert verdict.largest <= 1e-5
    assert verdict.reproduces
    report = flow.path("results/report/report.html").read_text()
    assert float(re.search(r'id="replay-max-diff">([^<]+)<', report).group(1)) == float(f"{verdict.largest:.3g}")
    assert "<b>reproduces</b>" in report


def test_replay_verdict_refuses_a_difference_beyond_its_tolerance():
    cached = pd.DataFrame({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7], "val_loss": [1.1, 0.6],
                           "val_accuracy": [0.4, 0.6]})
    replay = cached.copy()
    assert replay_verdict(cached, replay).reproduces
    replay.loc[1, "val_accuracy"] += 2 * REPLAY_TOLERANCE
    verdict = replay_verdict(cached, replay)
    assert not verdict.reproduces
    assert verdict.differences["val_accuracy"] == pytest.approx(2 * REPLAY_TOLERANCE)


def test_each_mode_feeds_other_features(full_run):
    _, flow = full_run
    losses = {run: metrics(flow, run)["loss"].to_numpy()
              for run in ("cached/k1_r0", "cached/k2_r0", "onthefly/r0", "noaug/r0", "cached/k2_r1",
                          "hybrid/k2_r0", "featureaug/r0")}
    runs = list(losses)
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            assert not np.allclose(losses[a], losses[b]), (a, b)


def test_report_table_equals_the_metrics_it_was_made_from(full_run):
    _, flow = full_run
    html = flow.path("results/report/report.html").read_text()
    for mode, k, runs in (("cached", "1", ["cached/k1_r0", "cached/k1_r1"]),
                          ("cached", "2", ["cached/k2_r0", "cached/k2_r1"]),
                          ("replay", "2", ["replay/k2_r0"]),
                          ("onthefly", "", ["onthefly/r0", "onthefly/r1"]),
                          ("noaug", "", ["noaug/r0", "noaug/r1"]),
                          ("hybrid", "2", ["hybrid/k2_r0", "hybrid/k2_r1"]),
                          ("featureaug", "", ["featureaug/r0", "featureaug/r1"])):
        row = re.search(rf'<tr data-mode="{mode}" data-k="{k}">(.*?)</tr>', html).group(1)
        cells = dict(re.findall(r'data-col="(\w+)" data-value="([^"]*)"', row))
        final = np.mean([metrics(flow, r)["val_accuracy"].iloc[-1] for r in runs])
        best = np.mean([metrics(flow, r)["val_accuracy"].max() for r in runs])
        assert float(cells["final_val_accuracy_mean"]) == pytest.approx(final, abs=1e-12)
        assert float(cells["best_val_accuracy_mean"]) == pytest.approx(best, abs=1e-12)
        assert int(cells["repeats"]) == len(runs)
        if mode in ("replay", "onthefly"):
            conv = np.mean([metrics(flow, r)["conv_seconds"].sum() for r in runs])
            assert float(cells["conv_seconds"]) == pytest.approx(conv, rel=1e-9)
    # one repeat has no spread to show; provenance and configuration are folded
    replay = re.search(r'<tr data-mode="replay" data-k="2">(.*?)</tr>', html).group(1)
    cached = re.search(r'<tr data-mode="cached" data-k="2">(.*?)</tr>', html).group(1)
    assert "±" not in replay and "±" in cached
    assert html.count("<details>") == 2
    # embedded plots: the report opens offline
    assert html.count('src="data:image/png;base64,') == 4  # side by side, curves, K, confusion matrices
    assert "http" not in re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)


def test_summary_counts_disk_and_extraction_time_of_the_cache(full_run):
    _, flow = full_run
    summary = json.loads(flow.path("results/train/cached/k2_r1/summary.json").read_text())
    stores = [flow.path(f"results/repeat_1/features/train/epoch_{e}.h5") for e in range(2)]
    assert summary["disk_bytes"] == sum(p.stat().st_size for p in stores)
    assert summary["conv_seconds"] > 0
    assert summary["seed"] == 4  # seed 3 + repeat 1


def test_prediction_gives_a_known_class_for_every_image(full_run, tiny_data):
    _, flow = full_run
    table = pd.read_csv(flow.path("results/predict/predictions.csv"))
    assert len(table) == 6
    assert set(table["label"]) <= {"circle", "square", "triangle"}
    assert table["probability"].between(0, 1).all()


def test_exported_model_equals_head_on_conv_base(full_run):
    config, flow = full_run
    import keras

    from augcache.base.conv_base import BaseSpec, build_base, feature_function
    from augcache.training.full_model import load_full_model
    from conftest import load_images

    paths = sorted((Path(config["data"]["dir"]) / "val").rglob("*.png"))[:4]
    images = load_images(paths, (SIZE, SIZE))
    full = load_full_model(flow.path("results/model/model.keras"))
    # the exported head: the cached run of K = cache.k, repeat 0, at its best epoch
    head = keras.saving.load_model(flow.path("results/train/cached/k2_r0/best_head.keras"))
    spec = BaseSpec.from_config({**config["conv_base"], "image_size": [SIZE, SIZE], "seed": config["seed"]})
    model, preprocess = build_base(spec)
    expected = head(feature_function(model, preprocess, spec.image_size)(images)).numpy()
    np.testing.assert_allclose(full(images).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_changed_head_setting_reruns_training_but_not_extraction(full_run):
    config, flow = full_run
    changed = dict(config, head=dict(config["head"], learning_rate=0.01))
    jobs = {rule for rule, _ in scheduled_jobs(flow.run(changed, "-n").stdout)}
    assert {"train_cached", "train_replay", "train_onthefly", "train_noaug", "make_report"} <= jobs
    assert not jobs & {"extract_epoch", "extract_val", "extract_noaug", "write_manifest", "merge_epochs"}


def test_nothing_reruns_after_a_full_run(full_run):
    config, flow = full_run
    result = flow.run(config, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_epoch_stream_feeds_every_head_epoch_once_in_order():
    seen = []

    def source(n):
        seen.append(n)
        rows = np.full((5, 2), float(n), np.float32)
        rows[:, 1] = np.arange(5)
        # blocks of uneven sizes are re-cut into batches of 2
        return [(rows[:3], np.arange(3)), (rows[3:], np.arange(3, 5))], 0.0

    stream = EpochStream(source, n_samples=5, batch_size=2, epochs=3)
    batches = list(stream)
    assert seen == [0, 1, 2]
    assert stream.steps_per_epoch == 3
    assert [float(x[0, 0]) for x, _ in batches] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [len(y) for _, y in batches] == [2, 2, 1] * 3
    assert [x[:, 1].tolist() for x, _ in batches[:3]] == [[0, 1], [2, 3], [4]]


def test_epoch_stream_refuses_an_epoch_of_the_wrong_size():
    stream = EpochStream(lambda n: ([(np.zeros((4, 2), np.float32), np.zeros(4))], 0.0), 5, 2, 1)
    with pytest.raises(ValueError, match="head epoch 0: 4 training samples, expected 5"):
        list(stream)


def test_cached_training_refuses_a_store_of_another_augmentation(full_run):
    config, flow = full_run
    from augcache.base.conv_base import BaseSpec
    from augcache.augmentation.manifest import AugmentConfig
    from augcache.base.store_fields import CacheConfig
    from augcache.base.store_fields import config_provenance

    spec = BaseSpec.from_config({**config["conv_base"], "image_size": [SIZE, SIZE], "seed": config["seed"]})
    other = AugmentConfig.from_config({**config["augment"], "rotation_range": 5})
    expected = dict(config_provenance(spec, other, CacheConfig(dtype="float16")), split="train")
    store = flow.path("results/features/train/epoch_0.h5")
    with pytest.raises(ProvenanceError, match=f"{store}: provenance field 'augmentation'"):
        CachedEpochs([store], [flow.path("results/manifest/epoch_0.csv")], expected)


def test_stores_record_op_determinism_and_a_reader_asking_otherwise_is_refused(full_run):
    config, flow = full_run
    from augcache.base.conv_base import BaseSpec
    from augcache.augmentation.manifest import AugmentConfig
    from augcache.base.store_fields import CacheConfig
    from augcache.base.store_fields import config_provenance

    spec = BaseSpec.from_config({**config["conv_base"], "image_size": [SIZE, SIZE], "seed": config["seed"]})
    store = flow.path("results/features/train/epoch_0.h5")
    assert read_attrs(store)["deterministic_ops"] == "true"
    off = CacheConfig(dtype="float16", deterministic_ops=False)
    expected = dict(config_provenance(spec, AugmentConfig.from_config(config["augment"]), off), split="train")
    with pytest.raises(ProvenanceError, match=f"{store}: provenance field 'deterministic_ops' is 'true'"):
        CachedEpochs([store], [flow.path("results/manifest/epoch_0.csv")], expected)


def test_op_determinism_is_on_unless_turned_off():
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    from augcache.core.backend import configure_tensorflow

    try:
        configure_tensorflow(0, deterministic_ops=False)
        assert not tf_config.is_op_determinism_enabled()
        configure_tensorflow(0)
        assert tf_config.is_op_determinism_enabled()
    finally:
        tf.config.experimental.enable_op_determinism()


def test_report_curves_have_whole_epochs_and_keep_the_cached_curve_under_its_replay(full_run):
    from augcache.report.figures import curves_figure, k_figure
    from augcache.report.tables import load_runs, mode_table

    config, flow = full_run
    summaries, metrics = load_runs(p.parent for p in flow.path("results/train").glob("*/*/summary.json"))
    figure = curves_figure(summaries, metrics, config["cache"]["k"])
    for ax in figure.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    cached, replay = lines["cached (augmentation cache)"], lines["replay (on the fly, manifest numbers)"]
    assert cached.get_linewidth() > replay.get_linewidth() and replay.get_marker() not in (None, "None", "")
    for ax in k_figure(mode_table(summaries)).axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())


def test_every_job_has_a_benchmark_and_the_report_counts_what_each_mode_needed(full_run):
    import pandas as pd

    config, flow = full_run
    logs = {p.relative_to(flow.path("results/logs")).with_suffix("") for p in flow.path("results/logs").rglob("*.log")}
    benchmarks = {p.relative_to(flow.path("results/benchmarks")).with_suffix("")
                  for p in flow.path("results/benchmarks").rglob("*.tsv")}
    # the base check's benchmark is named by its key, like its record
    # the base check's log and benchmark are named by its key, like its record
    assert logs == benchmarks
    check = [b for b in benchmarks if b.parts[0] == "check_conv_base"]
    assert len(check) == 1 and flow.path(f"results/base/checked/{check[0].name}.json").is_file()

    def seconds(*jobs):
        """The jobs' seconds by their own clock (X.cost.json beside each benchmark), added up."""
        return sum(json.loads(flow.path(f"results/benchmarks/{j}.cost.json").read_text())["seconds"] for j in jobs)

    # every job recorded its cost by its own clock, within the wall time Snakemake measured around it
    for job in benchmarks:
        own = json.loads(flow.path(f"results/benchmarks/{job}.cost.json").read_text())
        measured = float(pd.read_csv(flow.path(f"results/benchmarks/{job}.tsv"), sep="\t")["s"].iloc[0])
        assert 0 < own["seconds"] <= measured and own["ended"] - own["started"] == pytest.approx(own["seconds"], abs=0.01)

    shared = (f"check_conv_base/{check[0].name}", "extract/val")
    cached = [seconds(*shared, *(f"{prefix}{kind}/epoch_{e}" for kind in ("manifest", "extract") for e in range(2)),
                      f"train/cached/k2_r{r}") for r, prefix in ((0, ""), (1, "repeat_1/"))]
    onthefly = [seconds(*shared, f"train/onthefly/r{r}") for r in (0, 1)]
    table = pd.read_csv(flow.path("results/report/modes.csv"))
    row = table[(table["mode"] == "cached") & (table["k"] == 2)].iloc[0]
    assert row["end_to_end_seconds"] == pytest.approx(np.mean(cached), rel=1e-9)
    assert row["speedup_vs_onthefly"] == pytest.approx(np.mean(onthefly) / np.mean(cached), rel=1e-9)
    html = flow.path("results/report/report.html").read_text()
    headline = re.search(r'<p id="headline"><b>(.*?)</b></p>', html).group(1)
    assert "Cached augmentation (K=2) reaches" in headline and "Recommended K:" in headline
    assert f"in {np.mean(cached):.0f} s" in headline


def test_the_recommended_k_is_the_smallest_within_one_sd_of_the_best():
    import pandas as pd

    from augcache.report.tables import recommended_k

    table = pd.DataFrame({"mode": ["cached"] * 3 + ["onthefly"], "k": [1, 2, 5, None],
                          "final_val_accuracy_mean": [0.70, 0.79, 0.80, 0.9],
                          "final_val_accuracy_sd": [0.01, 0.02, 0.02, 0.01]})
    assert recommended_k(table) == (2, 5)
    table["final_val_accuracy_sd"] = float("nan")  # one repeat: no spread, the best K itself
    assert recommended_k(table) == (5, 5)


def test_feature_augmented_runs_write_the_numbers_they_drew_from_seed_and_head_epoch(full_run):
    from augcache.augmentation.feature_augment import FeatureAugmentConfig, draw_feature_params

    config, flow = full_run
    cfg = FeatureAugmentConfig.from_config(config["feature_augment"])
    head_epochs, n_train = config["head"]["epochs"], 18
    map_size = tuple(json.loads(read_attrs(flow.path("results/features/val.h5"))["feature_shape"])[:2])
    for run, seed in (("featureaug/r1", 4), ("hybrid/k2_r0", 3)):
        drawn = pd.read_csv(flow.path(f"results/train/{run}/feature_augment.csv.gz"))
        want = pd.concat([draw_feature_params(cfg, n_train, seed, n, map_size) for n in range(head_epochs)],
                         ignore_index=True)
        pd.testing.assert_frame_equal(drawn, want, check_exact=False, rtol=1e-12)
        summary = json.loads(flow.path(f"results/train/{run}/summary.json").read_text())
        assert summary["feature_augment"] == cfg.to_dict() and summary["seed"] == seed
    # the cached runs write none
    assert not flow.path("results/train/cached/k2_r0/feature_augment.csv.gz").exists()
    # hybrid trains on the main K only
    assert sorted(p.name for p in flow.path("results/train/hybrid").iterdir()) == ["k2_r0", "k2_r1"]


def test_the_report_sets_the_five_ways_side_by_side_and_names_the_winner(full_run):
    config, flow = full_run
    html = flow.path("results/report/report.html").read_text()
    table = pd.read_csv(flow.path("results/report/modes.csv"))
    side = re.search(r'<table id="side-by-side">(.*?)</table>', html).group(1)
    rows = re.findall(r'<tr data-mode="(\w+)">.*?<td data-value="([^"]*)">', side)
    # the modes, then the k-NN classifier's two banks (eval.knn)
    assert [mode for mode, _ in rows] == ["noaug", "featureaug", "cached", "hybrid", "onthefly", "knn", "knn"]
    macro = dict(re.findall(r'<tr data-mode="(\w+)">.*?<td data-col="macro">([^<]*)</td>', side))
    accuracy = {}
    for mode, value in rows[:-2]:
        row = table[(table["mode"] == mode) & ((table["k"] == 2) if mode in ("cached", "hybrid") else True)].iloc[0]
        assert float(value) == pytest.approx(row["final_val_accuracy_mean"], abs=1e-12)
        assert float(macro[mode].split(" ±")[0]) == pytest.approx(row["final_val_macro_accuracy_mean"], abs=5e-4)
        accuracy[mode] = float(value)
    headline = re.search(r'<p id="headline"><b>(.*?)</b></p>', html).group(1)
    assert "Side by side, " in headline
    # each mode against on the fly, paired over the same images and seeds (which images each run's
    # final head got right, kept by the evaluation job)
    assert "Against on the fly (fresh numbers every epoch), paired over the same images and seeds: " in headline
    evaluation = json.loads(flow.path("results/eval/heads.json").read_text())
    right = {(r["mode"], r["k"], r["repeat"]): np.array(r["correct"]) for r in evaluation["runs"]
             if r["head"] == "final" and "/sweep/" not in r["run"]}
    cells = re.findall(r'<tr data-mode="(\w+)">.*?<td data-col="paired">([^<]*)</td>', side)
    paired = dict(cells[:-2])
    # on the fly is the reference
    assert set(paired) == {"noaug", "featureaug", "cached", "hybrid", "onthefly"}
    assert paired["onthefly"] == ""
    for mode in ("noaug", "cached"):
        k = 2 if mode == "cached" else 0
        mean = np.mean([right[(mode, k, r)] - right[("onthefly", 0, r)] for r in (0, 1)])
        assert paired[mode].startswith(f"{100 * mean:+.1f} ("), paired[mode]
    # the k-NN rows too: the classifier's outcome (no seed) beside each repeat of on the fly
    knn = json.loads(flow.path("results/eval/knn.json").read_text())
    for bank, (mode, cell) in zip(knn["banks"], cells[-2:], strict=True):
        mean = np.mean([np.array(bank["correct"]) - right[("onthefly", 0, r)] for r in (0, 1)])
        assert mode == "knn" and cell.startswith(f"{100 * mean:+.1f} ("), cell
    # the modes table has the same paired column against the same reference
    modes = re.search(r'<table id="modes">(.*?)</table>', html).group(1)
    assert "points vs on the fly (fresh numbers every epoch) (paired, 95 % interval)" in modes
    in_modes = dict(re.findall(r'<tr data-mode="(\w+)" data-k="(?:2|)">.*?<td data-col="paired" data-value="[^"]*">([^<]*)</td>', modes))
    assert in_modes["cached"] == paired["cached"] and in_modes["noaug"] == paired["noaug"]


def test_the_side_by_side_verdict_weighs_the_lead_against_the_spread():
    from augcache.report.side_by_side import verdict

    def side(accuracies, sds):
        return pd.DataFrame({"mode": ["noaug", "featureaug", "cached"], "k": [None, None, 3], "repeats": 3,
                             "accuracy_mean": accuracies, "accuracy_sd": sds, "seconds": [10.0, 11.0, 30.0],
                             "disk_bytes": 0.0})

    clear = verdict(side([0.70, 0.75, 0.90], [0.01, 0.01, 0.02]))
    assert clear.startswith("Side by side, cached (augmentation cache), K=3 wins") and "0.150 ahead of feature" in clear
    assert "larger than one sd (0.020)" in clear
    assert "within one sd (0.100)" in verdict(side([0.70, 0.85, 0.90], [0.01, 0.1, 0.02]))
    assert "tie at 0.900" in verdict(side([0.70, 0.90, 0.90], [0.01, 0.1, 0.02]))


def _end_to_end(flow) -> dict:
    import pandas as pd

    table = pd.read_csv(flow.path("results/report/modes.csv"))
    return {(row.mode, None if pd.isna(row.k) else int(row.k)): row.end_to_end_seconds for row in table.itertuples()}


def test_a_leftover_benchmark_of_another_plan_is_not_counted(full_run, tmp_path):
    """A benchmark of a job of several epochs left by an earlier cache.epochs_per_job beside the
    jobs of one epoch of today's plan: the report counts today's jobs only."""
    config, finished = full_run
    flow = finished.clone(tmp_path / "project")
    before = _end_to_end(flow)
    table = pd.read_csv(flow.path("results/benchmarks/extract/epoch_0.tsv"), sep="\t")
    table["s"] = 9999.0
    table.to_csv(flow.path("results/benchmarks/extract/epochs_0-1.tsv"), sep="\t", index=False)
    flow.run(config, "results/report/report.html", "--forcerun", "make_report")
    assert _end_to_end(flow) == pytest.approx(before, rel=1e-9)


def test_a_report_after_a_rerun_that_reused_everything_counts_what_computing_took(full_run, tmp_path, tiny_data):
    """Every image touched (same bytes), everything rerun and reused: the report's end-to-end seconds
    stay those of computing (within 20 % of the fresh run's), and it names the reused jobs."""
    from augcache.report.costs import job_cost

    config, finished = full_run
    flow = finished.clone(tmp_path / "project")
    fresh = _end_to_end(flow)
    benchmarks = sorted(flow.path("results/benchmarks").rglob("*.tsv"))
    fresh_jobs = {b: job_cost(b).seconds for b in benchmarks}
    html = flow.path("results/report/report.html").read_text()
    assert "Every job was computed in its last run" in html
    assert re.search(r"the last runs of the \d+ jobs of this report took \d+ s of wall-clock time \(while at least one ran\) "
                     r"for \d+ s of job time",
                     html)
    images = list(tiny_data.rglob("*.png"))
    times = {p: p.stat().st_mtime_ns for p in images}
    try:
        for image in images:
            os.utime(image, ns=(times[image] + 10**9, times[image] + 10**9))
        flow.run(config)
    finally:
        for image, ns in times.items():
            os.utime(image, ns=(ns, ns))
    rerun = _end_to_end(flow)
    assert rerun.keys() == fresh.keys()
    for run, seconds in fresh.items():
        assert rerun[run] == pytest.approx(seconds, rel=0.2), run
    # a reused job counts what computing it took by the clock computed jobs are counted by: exactly
    reused = [b for b in benchmarks if b.with_suffix("").with_suffix(".reused.json").is_file()]
    assert len(reused) > 10
    for bench in reused:
        assert job_cost(bench).seconds == pytest.approx(fresh_jobs[bench], abs=1e-3), bench
    html = flow.path("results/report/report.html").read_text()
    reuse = re.search(r'<p id="reuse">(.*?)</p>', html, re.S).group(1)
    for job in ("extract/epoch_0", "extract/val", "train/cached/k2_r0", "train/onthefly/r1", "export_model",
                "manifest/val_tta/view_0", "extract/val_tta/view_1"):
        assert job in reuse, reuse
    assert "put outputs computed before in place" in reuse


def test_with_one_repeat_the_headline_gives_no_verdict_on_accuracy():
    """One repeat has no spread: the headline says the accuracy difference is not measured (and how
    to measure it) instead of calling it larger than one sd; with two repeats it judges."""
    from augcache.report.headline import headline
    from augcache.report.tables import SPEEDUP

    def table(repeats, sd, ks=(5, 2)):
        rows = len(ks) + 1
        return pd.DataFrame({
            "mode": ["cached"] * len(ks) + ["onthefly"], "k": [*ks, 0], "repeats": [repeats] * rows,
            "final_val_accuracy_mean": [0.693, 0.68][: len(ks)] + [0.725], "final_val_accuracy_sd": [sd] * rows,
            "end_to_end_seconds": [60.0, 40.0][: len(ks)] + [61.0], "total_seconds": [50.0, 30.0][: len(ks)] + [55.0],
            "disk_bytes": [1e6, 4e5][: len(ks)] + [0.0], SPEEDUP: [61 / 60, 61 / 40][: len(ks)] + [1.0]})

    one = headline(table(1, float("nan")), 5, 10.0)
    assert "not measured" in one and "train.repeats" in one
    assert "by more than one sd" not in one and "does not pay" not in one
    assert "no K can be recommended" in one
    two = headline(table(2, 0.01), 5, 10.0)
    assert "does not pay: it is less accurate than on the fly by more than one sd" in two
    assert "Recommended K: 5" in two
    # one K ran: none is recommended, whatever the repeats
    for repeats, sd in ((1, float("nan")), (2, 0.01)):
        only = headline(table(repeats, sd, ks=(5,)), 5, 10.0)
        assert "Only K=5 ran, so no K is recommended: a K sweep (train.sweep_k) would choose one." in only
        assert "Recommended K" not in only


def test_wall_clock_time_counts_jobs_side_by_side_once_and_no_pause():
    from augcache.report.costs import Account

    account = Account(pd.DataFrame(), 0.0, {}, spans=[(0.0, 10.0), (5.0, 12.0), (100.0, 103.0), (101.0, 102.0)])
    assert account.wall_seconds == pytest.approx(15.0)
    assert np.isnan(Account(pd.DataFrame(), 0.0, {}).wall_seconds)
