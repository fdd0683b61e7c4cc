"""Every head run in MLflow (tracking.mlflow), read back with MLflow's own client."""

import json
import logging

import pandas as pd
import pytest


def test_every_head_run_is_an_mlflow_run_with_its_metrics_tags_and_artifacts(folded, tmp_path):
    from mlflow import MlflowClient

    from conftest import Workflow

    config, flow = folded
    uri = config["tracking"]["mlflow"]["uri"]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("folds").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("augcache.role") == "workflow"]
    children = {r.data.tags["augcache.key"]: r for r in runs if "augcache.key" in r.data.tags}
    assert len(parents) == 1 and len(children) == len(runs) - 1
    recorded = json.loads(flow.path("results/tracking/mlflow.json").read_text())
    # one MLflow run per head run of the report: every mode's fold runs
    summaries = sorted(flow.path("results/train").glob("*/*_f*/summary.json"))
    assert len(children) == len(summaries) == len(recorded["logged"]) == 3 * config["train"]["repeats"] * 3 + 1
    by_name = {r.info.run_name: r for r in children.values()}
    for path in summaries:
        summary = json.loads(path.read_text())
        run = by_name[f"{summary['mode']}/{path.parent.name}"]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert (run.data.tags["mode"], run.data.tags["repeat"], run.data.tags["fold"]) == \
            (summary["mode"], str(summary["repeat"]), str(summary["fold"]))
        assert run.data.tags["weights_sha256"] == summary["weights_sha256"] and "folds_sha256" in run.data.tags
        assert ("manifest_0_sha256" in run.data.tags) == (summary["mode"] in ("cached", "replay"))
        for key in ("final_val_accuracy", "best_val_accuracy", "final_val_macro_accuracy"):
            assert run.data.metrics[key] == pytest.approx(summary[key])
        curve = client.get_metric_history(run.info.run_id, "val_accuracy")
        metrics = pd.read_csv(path.parent / "metrics.csv")
        assert [m.step for m in curve] == metrics["epoch"].tolist()
        assert [m.value for m in curve] == pytest.approx(metrics["val_accuracy"].tolist())
        assert json.loads(run.data.params["head.epochs"]) == config["head"]["epochs"]
    assert "tta_accuracy" in by_name["cached/k2_r0_f0"].data.metrics
    assert {"knn_unaugmented_accuracy", "knn_2_cached_epochs_accuracy"} <= set(parents[0].data.metrics)
    artifacts = {a.path for folder in ("report", "model", "manifest")
                 for a in client.list_artifacts(parents[0].info.run_id, folder)}
    assert {"report/report.html", "model/model.keras", "manifest/epoch_0.csv", "manifest/epoch_1.csv"} <= artifacts
    # beside the local database, not in the project
    assert (flow.root.parent / "mlartifacts" / "folds").is_dir() and not flow.path("mlruns").exists()
    # the tracking job again, on a copy that reuses everything: no run is logged twice
    again = Workflow(tmp_path / "again", finished=flow)
    again.run(config, "--forcerun", "track_runs")
    assert len(client.search_runs([experiment], max_results=1000)) == len(runs)
    assert json.loads(again.path("results/tracking/mlflow.json").read_text())["logged"] == []


def test_a_tracker_that_cannot_be_reached_gives_a_warning_naming_the_key(tmp_path, caplog):
    from augcache.report.tracking import track

    run = tmp_path / "results/train/noaug/r0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"mode": "noaug", "k": 0, "repeat": 0, "final_val_accuracy": 0.5}))
    (run / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n0,1.0,0.5,1.0,0.5\n")
    with caplog.at_level(logging.WARNING):
        record = track("http://127.0.0.1:9", "x", [str(run)], {"": {"seed": 0}})
    assert record["logged"] == [] and "error" in record
    assert "tracking.mlflow.uri: http://127.0.0.1:9 could not be reached" in caplog.text


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the event files in a folder: {tag: [(step, value), …]}, read with TensorFlow's
    own record reader and event protos."""
    import tensorflow as tf

    found: dict[str, list] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


def test_every_head_run_has_the_tensorboard_logs_keras_writes(folded):
    config, flow = folded
    record = json.loads(flow.path("results/tracking/tensorboard.json").read_text())
    # the report's runs (each fold's, and the refit head) and each sweep point's fold runs
    runs = sorted(p.parent for pattern in ("train/*/*/metrics.csv", "sweep/*/*_f*/metrics.csv")
                  for p in flow.path("results").glob(pattern))
    assert sorted(record["runs"]) == sorted(str(run.relative_to(flow.path("results"))) for run in runs)
    assert any("sweep/" in run for run in record["runs"]) and any(run.endswith("_f2") for run in record["runs"])
    for run in runs:
        metrics = pd.read_csv(run / "metrics.csv")
        logs = flow.path("results/tracking/tensorboard") / run.relative_to(flow.path("results"))
        for split, prefix in (("train", ""), ("validation", "val_")):
            scalars = tensorboard_scalars(logs / split)
            for name in ("loss", "accuracy"):
                steps, values = zip(*scalars[f"epoch_{name}"])
                assert list(steps) == metrics["epoch"].tolist()
                assert list(values) == pytest.approx(metrics[prefix + name].tolist(), rel=1e-6)


def test_tensorboard_logs_are_written_anew_and_without_tensorflow_a_warning_names_the_key(tmp_path, caplog,
                                                                                         monkeypatch):
    from augcache.core import backend
    from augcache.report.tensorboard import write_logs

    runs = []
    for name in ("r0", "r1"):
        run = tmp_path / "results/train/noaug" / name
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n0,1.0,0.5,1.1,0.4\n1,0.8,0.6,1.0,0.5\n")
        runs.append(str(run))
    logs = tmp_path / "results/tracking/tensorboard"
    assert write_logs(runs, logs)["runs"] == ["train/noaug/r0", "train/noaug/r1"]
    steps, values = zip(*tensorboard_scalars(logs / "train/noaug/r1/validation")["epoch_accuracy"])
    assert steps == (0, 1) and values == pytest.approx((0.4, 0.5))
    # a run no longer in the workflow leaves no log behind
    write_logs(runs[:1], logs)
    assert (logs / "train/noaug/r0/train").is_dir() and not (logs / "train/noaug/r1").exists()

    def missing():
        raise ModuleNotFoundError("No module named 'tensorflow'")

    monkeypatch.setattr(backend, "tensorflow", missing)
    with caplog.at_level(logging.WARNING):
        record = write_logs(runs, tmp_path / "elsewhere")
    assert record["runs"] == [] and "error" in record
    assert "tracking.tensorboard: TensorBoard logs need TensorFlow's summary writer" in caplog.text
