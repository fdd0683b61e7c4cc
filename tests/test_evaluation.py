"""Evaluation from the cache: test-time views, the k-NN classifier, per-class results and class
weights, checked by their numbers on the shared runs (full_run: eval.tta_views 2 and eval.knn;
swept: test images with one view; finetuned: head.class_weight balanced) and on the demo's images."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, conv_base_model, load_images
from augcache.evaluation.metrics import (
    KNN,
    balanced_class_weights,
    class_report,
    confusion_matrix,
    knn_classify,
    knn_vectors,
    tta_probabilities,
)


def test_class_weights_confusion_and_macro_accuracy_by_hand():
    assert balanced_class_weights([0, 0, 0, 1], 3) == pytest.approx([4 / 9, 4 / 3, 0.0])
    confusion = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    report = class_report([0, 0, 1, 2, 2, 2], np.eye(3)[[0, 1, 1, 2, 2, 0]], ["a", "b", "c"])
    assert report["recall"] == {"a": 0.5, "b": 1.0, "c": 2 / 3}
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_accuracy"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    # a class without validation images has no recall and does not count in the macro average
    report = class_report([0, 0], np.eye(2)[[0, 1]], ["a", "b"])
    assert report["recall"]["b"] is None and report["macro_accuracy"] == 0.5
    with pytest.raises(ValueError, match="shape"):
        tta_probabilities(np.ones((2, 3)), [np.ones((3, 3))])


def test_knn_keeps_the_most_similar_rows_whatever_the_blocks():
    rng = np.random.default_rng(0)
    bank, labels = rng.normal(size=(50, 6)).astype(np.float32), rng.integers(0, 3, 50)
    queries = rng.normal(size=(7, 6)).astype(np.float32)
    whole = KNN(knn_vectors(queries), 5)
    whole.add(knn_vectors(bank), labels)
    blocked = KNN(knn_vectors(queries), 5)
    for start in range(0, 50, 8):
        blocked.add(knn_vectors(bank[start:start + 8]), labels[start:start + 8])
    brute = np.argsort(-(knn_vectors(queries) @ knn_vectors(bank).T), axis=1, kind="stable")[:, :5]
    assert (whole.index == brute).all() and (blocked.index == brute).all()
    assert np.array_equal(whole.probabilities(3, 0.07), blocked.probabilities(3, 0.07))
    # a bank smaller than k is refused, naming the key
    with pytest.raises(ValueError, match="eval.knn.k"):
        knn_classify(queries, lambda: [(bank[:3], labels[:3])], 3, k=5)


def read_store(path):
    import h5py

    with h5py.File(path, "r") as handle:
        return handle["features"][:].astype(np.float32), handle["labels"][:], [
            s.decode() for s in handle["sample_ids"][:]]


def test_the_knn_of_a_point_in_the_bank_finds_itself(full_run):
    config, flow = full_run
    features, labels, _ = read_store(flow.path("results/features/train_noaug.h5"))
    probabilities, neighbours = knn_classify(features, lambda: [(features[:7], labels[:7]), (features[7:], labels[7:])],
                                             3, k=1, query_rows=5)
    assert neighbours[:, 0].tolist() == list(range(len(features)))
    assert (probabilities.argmax(axis=1) == labels).all()
    # the workflow's k-NN on both banks, computed again here from the stores
    knn = json.loads(flow.path("results/eval/knn.json").read_text())
    val, val_labels, _ = read_store(flow.path("results/features/val.h5"))
    epochs = [read_store(flow.path(f"results/features/train/epoch_{e}.h5")) for e in range(2)]
    banks = {"unaugmented": [(features, labels)], "2 cached epochs": [(x, y) for x, y, _ in epochs]}
    assert [b["bank"] for b in knn["banks"]] == list(banks)
    for found in knn["banks"]:
        blocks = banks[found["bank"]]
        probs, _ = knn_classify(val, lambda: blocks, 3, k=3, temperature=0.07)
        assert found["accuracy"] == pytest.approx(float((probs.argmax(axis=1) == val_labels).mean()))
        assert found["bank_rows"] == sum(len(y) for _, y in blocks) and found["seconds"] > 0
    html = flow.path("results/report/report.html").read_text()
    assert html.count('<tr data-mode="knn">') == 2
    # a k-NN row's seconds are counted as a run's: its bank's jobs and the validation store's, and its
    # share of the k-NN job, each job's start included (as in every other row), not the classifier alone
    from augcache.report.costs import job_cost, knn_jobs
    from augcache.jobs.settings import Settings, load_config

    settings = Settings(load_config([flow.path("config/config.yaml"), flow.path("overlay.yaml")]))
    jobs = knn_jobs(settings, [[0], [1]])
    knn_job = job_cost(flow.path("results/benchmarks/evaluate_knn.tsv")).seconds
    classifier = {b["bank"]: b["seconds"] for b in knn["banks"]}
    shown = [float(cells[4]) for cells in re.findall(
        r'<tr data-mode="knn"><td>(.*?)</td><td>(.*?)</td><td.*?>(.*?)</td><td.*?>(.*?)</td><td>(.*?)</td>', html)]
    for bank, seconds in zip(classifier, shown):
        needed = sum(job_cost(flow.path(j)).seconds for j in jobs[bank])
        assert seconds == pytest.approx(needed + classifier[bank] + (knn_job - sum(classifier.values())) / 2, abs=0.06)
        assert seconds > needed + classifier[bank]


def test_tta_views_are_seeded_manifests_of_the_validation_rows(full_run):
    config, flow = full_run
    from augcache.data.dataset import read_index
    from augcache.augmentation.manifest import AugmentConfig, read_manifest, view_manifest

    index = read_index(flow.path("results/dataset/index.csv"))
    val = index[index["split"] == "val"]
    aug = AugmentConfig.from_config(config["augment"])
    views = [read_manifest(flow.path(f"results/manifest/val_tta/view_{v}.csv")) for v in range(2)]
    for v, table in enumerate(views):
        drawn = view_manifest(val, aug, config["seed"], v, (32, 32))
        pd.testing.assert_frame_equal(table, drawn, check_exact=True, check_dtype=False)
    # the views differ from each other and from the training epochs' numbers, and keep the stored rows' order
    assert not np.array_equal(views[0]["rotation"], views[1]["rotation"])
    _, _, val_ids = read_store(flow.path("results/features/val.h5"))
    for v in range(2):
        assert read_store(flow.path(f"results/features/val_tta/view_{v}.h5"))[2] == val_ids


def test_tta_with_no_views_is_the_plain_evaluation(full_run):
    import keras

    config, flow = full_run
    from augcache.evaluation.scoring import score_heads

    evaluation = json.loads(flow.path("results/eval/heads.json").read_text())
    assert evaluation["tta_views"] == 2
    val, labels, _ = read_store(flow.path("results/features/val.h5"))
    views = [read_store(flow.path(f"results/features/val_tta/view_{v}.h5"))[0] for v in range(2)]
    runs = {(r["run"], r["head"]): r for r in evaluation["runs"]}
    assert len(runs) == 2 * 13  # every run of the full config: its final and its best head
    for run in ("results/train/cached/k2_r0", "results/train/noaug/r1", "results/train/hybrid/k2_r1"):
        summary = json.loads(flow.path(f"{run}/summary.json").read_text())
        final = runs[(run, "final")]
        # the job's plain scores are the training run's own
        assert final["accuracy"] == pytest.approx(summary["final_val_accuracy"])
        assert final["macro_accuracy"] == pytest.approx(summary["final_val_macro_accuracy"])
        assert runs[(run, "best")]["macro_accuracy"] == pytest.approx(summary["best_head_val_macro_accuracy"])
        # with the views: the mean of the image's and the views' probabilities, computed again here
        head = keras.saving.load_model(flow.path(f"{run}/head.keras"), compile=False)
        averaged = np.mean([head.predict(x, verbose=0) for x in [val, *views]], axis=0)
        assert final["tta_accuracy"] == pytest.approx(float((averaged.argmax(axis=1) == labels).mean()))
        # which images each got right, for the paired comparisons
        assert final["tta_correct"] == (averaged.argmax(axis=1) == labels).astype(int).tolist()
        assert np.mean(final["correct"]) == pytest.approx(final["accuracy"]) and len(final["correct"]) == len(labels)
    # V = 0: the views change nothing
    plain = score_heads([str(flow.path("results/train/cached/k2_r0"))], flow.path("results/features/val.h5"), [],
                        ["circle", "square", "triangle"], None, 4)["runs"]
    for row in plain:
        assert row["tta_accuracy"] == row["accuracy"] and row["tta_macro_accuracy"] == row["macro_accuracy"]
        assert row["accuracy"] == runs[("results/train/cached/k2_r0", row["head"])]["accuracy"]
    html = flow.path("results/report/report.html").read_text()
    assert html.count('<tr data-mode="cached" data-head=') == 2
    # the views' gain, paired over the same images and heads, with its interval
    row = re.search(r'<tr data-mode="cached" data-head="final">(.*?)</tr>', html).group(1)
    assert re.search(r"<td>[+-]\d\.\d{3} \([+-]\d\.\d{3} to [+-]\d\.\d{3}\)</td>", row), row


def test_a_view_store_of_other_images_is_refused_naming_it(full_run, tmp_path):
    import shutil

    _, flow = full_run
    from augcache.core.provenance import ProvenanceError
    from augcache.evaluation.scoring import check_views

    views = [flow.path(f"results/features/val_tta/view_{v}.h5") for v in range(2)]
    swapped = tmp_path / "view_0.h5"
    shutil.copy(views[1], swapped)
    with pytest.raises(ProvenanceError, match=r"view_0\.h5.*tta_view"):
        check_views(flow.path("results/features/val.h5"), [swapped, views[1]])


def test_confusion_rows_sum_to_the_class_counts(full_run, swept):
    _, flow = full_run
    scores = json.loads(flow.path("results/model/val_scores.json").read_text())
    _, labels, _ = read_store(flow.path("results/features/val.h5"))
    confusion = np.array(scores["confusion"])
    assert confusion.sum(axis=1).tolist() == np.bincount(labels, minlength=3).tolist()
    assert list(scores["count"].values()) == confusion.sum(axis=1).tolist()
    recall = np.diag(confusion) / confusion.sum(axis=1)
    assert list(scores["recall"].values()) == pytest.approx(recall.tolist())
    assert scores["macro_accuracy"] == pytest.approx(recall.mean())
    html = flow.path("results/report/report.html").read_text()
    rows = re.findall(r'<tr data-class="(\w+)"><td>\w+</td><td>(\d+)</td><td>([\d.]+)</td>', html)
    assert [(name, int(n), float(r)) for name, n, r in rows] == [
        (name, scores["count"][name], round(scores["recall"][name], 3)) for name in scores["classes"]]
    # the test images: three of each class, with and without the views
    _, flow = swept
    test = json.loads(flow.path("results/model/test_scores.json").read_text())
    for report in (test, test["tta"]):
        assert np.array(report["confusion"]).sum(axis=1).tolist() == [3, 3, 3]
        assert report["accuracy"] == pytest.approx(np.trace(np.array(report["confusion"])) / 9)
    assert test["tta"]["views"] == 1


def test_predict_with_test_time_views_is_the_test_scores(swept, tmp_path):
    config, flow = swept
    from augcache.data.dataset import read_index

    index = read_index(flow.path("results/dataset/index.csv"))
    test = index[index["split"] == "test"]
    folder = tmp_path / "images"
    for row in test.itertuples():
        target = folder / row.sample_id
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(open(row.path, "rb").read())
    out = tmp_path / "predicted.csv"
    subprocess.run([sys.executable, "-m", "augcache.cli", "predict", str(flow.path("results/model/model.keras")),
                    str(folder), str(out), "--tta", "2"], check=True, cwd=ROOT, capture_output=True)
    predicted = pd.read_csv(out)
    truth = [p.split("/")[-2] for p in predicted["path"]]
    scores = json.loads(flow.path("results/model/test_scores.json").read_text())
    # the views are drawn from the images' sample ids (here their paths): the accuracy may differ
    # from the workflow's only through other numbers, so it is checked against the workflow's own
    # function on the same paths
    from augcache.training.full_model import predict_files

    again = predict_files(flow.path("results/model/model.keras"), flow.path("results/model/classes.json"),
                          predicted["path"].tolist(), tta_views=2)
    assert predicted["label"].tolist() == again["label"].tolist()
    assert predicted["probability"].to_numpy() == pytest.approx(again["probability"].to_numpy(), abs=1e-6)
    plain = predict_files(flow.path("results/model/model.keras"), flow.path("results/model/classes.json"),
                          predicted["path"].tolist())
    assert float((plain["label"] == pd.Series(truth)).mean()) == pytest.approx(scores["accuracy"])
    assert not np.allclose(plain["probability"], again["probability"])
    # an image's views are its own: predicted alone, it gets the probabilities it got among the others
    for number in (0, len(predicted) - 1):
        alone = predict_files(flow.path("results/model/model.keras"), flow.path("results/model/classes.json"),
                              [predicted["path"][number]], tta_views=2)
        assert alone["probability"][0] == pytest.approx(again["probability"][number], abs=1e-6)
        assert alone["label"][0] == again["label"][number]


def test_balanced_class_weights_raise_the_minority_recall_on_a_1_to_9_demo_split(tmp_path):
    from augcache.data.demo import DEMO_CLASSES, write_demo_images
    from augcache.training.head import HeadConfig
    from augcache.training.train import train_head

    write_demo_images(tmp_path, 32, 45, 20, seed=0)
    base = conv_base_model()

    def features(split, counts):
        xs, ys = [], []
        for number, name in enumerate(DEMO_CLASSES):
            files = sorted((tmp_path / split / name).glob("*.png"))[:counts[number]]
            xs.append(base.predict(load_images(files, (32, 32)), verbose=0))
            ys += [number] * len(files)
        return np.concatenate(xs), np.array(ys)

    x, y = features("train", [5, 45, 45, 45])  # the first class 1:9
    val = features("val", [20] * 4)
    cfg = HeadConfig(hidden_units=(16,), epochs=30, batch_size=10, learning_rate=0.01)

    def source(n):
        order = np.random.default_rng([0, n]).permutation(len(y))
        return [(x[order], y[order])], 0.0

    recall = {}
    for name, weights in (("none", None), ("balanced", balanced_class_weights(y, 4))):
        model, _, _ = train_head(source, len(y), x.shape[1:], 4, val, cfg, seed=1, class_weights=weights)
        recall[name] = class_report(val[1], model.predict(val[0], verbose=0), list(DEMO_CLASSES))["recall"]
    assert balanced_class_weights(y, 4)[0] == pytest.approx(140 / (4 * 5))
    assert recall["balanced"][DEMO_CLASSES[0]] > recall["none"][DEMO_CLASSES[0]]


def test_class_weights_are_recorded_in_the_summaries(full_run, finetuned):
    _, flow = full_run
    summary = json.loads(flow.path("results/train/cached/k2_r0/summary.json").read_text())
    assert summary["class_weight"] is None and "class_weights" not in summary
    _, flow = finetuned
    for run in ("cached/k2_r0", "onthefly/r0"):
        summary = json.loads(flow.path(f"results/finetune/{run}/summary.json").read_text())
        # equal classes: balanced weights are all 1
        assert summary["class_weight"] == "balanced"
        assert summary["class_weights"] == {"circle": 1.0, "square": 1.0, "triangle": 1.0}
    # the fine-tuning table shows the best head's macro-averaged accuracy (one repeat)
    table = re.search(r'<table id="finetune">(.*?)</table>', flow.path("results/report/report.html").read_text()).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", re.search(r'<tr data-mode="cached">(.*?)</tr>', table).group(1))
    summary = json.loads(flow.path("results/finetune/cached/k2_r0/summary.json").read_text())
    assert float(cells[4]) == pytest.approx(summary["best_head_val_macro_accuracy"], abs=5e-4)


def test_a_knn_bank_of_another_base_is_refused_naming_it(full_run, float32_runs):
    config, flow = full_run
    from augcache.core.provenance import ProvenanceError
    from augcache.evaluation.scoring import score_knn

    # the float32 runs' epoch store: the same base, another dtype
    other = float32_runs[1][0].path("results/features/train/epoch_0.h5")
    with pytest.raises(ProvenanceError, match=r"epoch_0\.h5.*'dtype'"):
        score_knn(flow.path("results/features/val.h5"), {"bank": [other]}, ["circle", "square", "triangle"],
                  3, 0.07, 64)


def test_one_more_view_plans_its_view_and_the_scoring_and_trains_nothing_again(full_run, tmp_path):
    from test_workflow import scheduled_jobs

    config, flow = full_run
    clone = flow.clone(tmp_path / "project")
    more = dict(config, eval={"tta_views": 3, "knn": {"k": 3}})
    rules = sorted(rule for rule, _ in scheduled_jobs(clone.run(more, "-n").stdout))
    assert rules == ["all", "describe_conv_base", "evaluate_heads", "extract_view", "make_report",
                     "write_view_manifest"], rules


def test_a_bank_or_view_through_another_base_is_refused_by_any_field(tmp_path):
    """Stores read together must share every provenance field but what each holds: a k-NN bank
    whose base had another preprocessing (a field a hand list of base fields left out) or another
    preset is refused, naming the file and the field."""
    from augcache.core.provenance import ProvenanceError
    from augcache.evaluation.scoring import check_views, score_knn
    from augcache.store.features import FeatureWriter

    base = {"base_architecture": "keras_hub", "base_preset": "presets/dino", "preset_sha256": "p1",
            "base_preprocessing": "converter", "weights_sha256": "w1", "dtype": "float32", "pixels_sha256": "x1"}

    def store(name, n=6, **fields):
        attrs = base | {"split": "train", "epoch": -1, "augmentation": "none"} | fields
        rng = np.random.default_rng(len(name))
        with FeatureWriter(tmp_path / name, n, (4,), "float32", attrs) as writer:
            writer.write(rng.normal(size=(n, 4)), np.arange(n) % 3, [f"s{i}" for i in range(n)])
        return tmp_path / name

    val = store("val.h5", split="val")
    assert score_knn(val, {"bank": [store("bank.h5")]}, ["a", "b", "c"], 3, 0.07, 64)["banks"][0]["bank_rows"] == 6
    other = store("other.h5", base_preprocessing='{"scale": 1}')
    with pytest.raises(ProvenanceError, match=rf"{other}: provenance field 'base_preprocessing'"):
        score_knn(val, {"bank": [other]}, ["a", "b", "c"], 3, 0.07, 64)
    view = store("view.h5", split="val", tta_view=0, augmentation="rot", preset_sha256="p2")
    with pytest.raises(ProvenanceError, match=rf"{view}: provenance field 'preset_sha256'"):
        check_views(val, [view])


def test_a_knn_asking_for_more_neighbours_than_images_stops_before_any_job(full_run, tmp_path):
    from augcache.jobs.settings import Settings, load_config

    config, finished = full_run
    flow = finished.clone(tmp_path / "project")
    too_many = dict(config, eval=dict(config["eval"], knn={"k": 19}))
    result = flow.run(too_many, "-n", check=False)
    assert result.returncode != 0
    assert "eval.knn.k: 19 neighbours, but the k-NN's unaugmented bank holds the 18 training images" in \
        result.stdout + result.stderr
    settings = Settings(load_config([flow.path("config/config.yaml"), flow.path("overlay.yaml")]))
    settings.check_knn_bank(19)  # 19 training images: k = 19 fits
    with pytest.raises(ValueError, match="set k to at most 18"):
        settings.check_knn_bank(18)
