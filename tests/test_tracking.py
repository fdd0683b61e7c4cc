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
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"report.html", "model.keras", "epoch_0.csv", "epoch_1.csv"} <= artifacts
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
        record = track("http://127.0.0.1:9", "x", [str(run)], {"seed": 0})
    assert record["logged"] == [] and "error" in record
    assert "tracking.mlflow.uri: http://127.0.0.1:9 could not be reached" in caplog.text
