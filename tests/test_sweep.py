"""Head sweeps on one cache: every point trained on the same stores, the best chosen by the rule,
exported at its best epoch; adding a point trains only that point."""

import json

import numpy as np
import pandas as pd
import pytest

from augcache.training.sweep import best_epoch, point_name, sweep_points, sweep_table
from conftest import RATES
from test_workflow import scheduled_jobs


def test_a_sweep_trains_every_point_and_chooses_the_best_mean(swept):
    config, flow = swept
    table = pd.read_csv(flow.path("results/sweep/sweep.csv"))
    assert len(table) == 6 and table["repeats"].eq(2).all()
    means = table.set_index("point")["val_accuracy_mean"]
    selection = json.loads(flow.path("results/sweep/selection.json").read_text())
    assert means[selection["point"]] == means.max()
    assert table.loc[table["chosen"], "point"].tolist() == [selection["point"]]
    # the mean is over each repeat's best epoch, as the summaries say
    runs = [json.loads(flow.path(f"results/sweep/{selection['point']}/r{r}/summary.json").read_text())
            for r in (0, 1)]
    assert means[selection["point"]] == pytest.approx(np.mean([r["best_val_accuracy"] for r in runs]))
    report = flow.path("results/report/report.html").read_text()
    assert report.count("<tr data-point=") == 6
    assert "Optimistic" in report
    classes = json.loads(flow.path("results/model/classes.json").read_text())
    assert classes["head"]["point"] == selection["point"] and classes["head"]["epoch"] == runs[0]["best_epoch"]


def test_a_sweep_on_a_cache_extracts_nothing_more(swept):
    config, flow = swept
    dry = flow.run(config, "-n")
    assert not scheduled_jobs(dry.stdout), dry.stdout[-2000:]


def test_adding_a_point_schedules_only_its_repeats(swept):
    config, flow = swept
    more = dict(config, head_sweep={"learning_rate": RATES + [0.3]})
    jobs = [rule for rule, _ in scheduled_jobs(flow.run(more, "-n").stdout)]
    assert jobs.count("train_sweep_point") == 2, jobs
    assert not {"extract_epoch", "extract_val", "write_manifest", "train_cached"} & set(jobs), jobs
    assert "make_report" in jobs


def test_the_exported_model_reproduces_the_chosen_best_epoch_from_the_files(swept):
    config, flow = swept
    from augcache.training.full_model import predict_folder

    selection = json.loads(flow.path("results/sweep/selection.json").read_text())
    val = config["data"]["dir"] + "/val"
    table = predict_folder(flow.path("results/model/model.keras"), flow.path("results/model/classes.json"), val,
                           batch_size=config["cache"]["batch_size"])
    truth = table["path"].map(lambda p: p.split("/")[-2])
    accuracy = float((table["label"] == truth).mean())
    assert accuracy == pytest.approx(selection["val_accuracy_at_epoch"], abs=1e-6)  # Keras keeps float32


def test_points_are_named_by_their_settings_and_grid_every_combination():
    points = sweep_points({"learning_rate": [1e-3, 1e-4], "dropout": [0.0, 0.5], "hidden_units": [[8], [8, 4]]},
                          {"learning_rate": 1e-2, "dropout": 0.3, "hidden_units": [16], "epochs": 5})
    assert len(points) == 8
    assert point_name({"learning_rate": 1e-3, "dropout": 0.5, "hidden_units": [8, 4]}) in points
    assert all(p["epochs"] == 5 for p in points.values())
    with pytest.raises(ValueError, match="head_sweep: seed cannot be swept"):
        sweep_points({"seed": [1, 2]}, {})


def test_selection_breaks_ties_by_sd_then_size_and_can_use_the_loss():
    def summary(point, repeat, acc, loss, params):
        return {"point": point, "repeat": repeat, "swept": {}, "best_val_accuracy": acc, "best_val_loss": loss,
                "best_epoch": 0, "head_seconds": 1.0, "head_parameters": params}

    rows = [summary("a", 0, 0.8, 0.5, 100), summary("a", 1, 0.6, 0.4, 100),   # mean 0.7, sd 0.14
            summary("b", 0, 0.7, 0.6, 100), summary("b", 1, 0.7, 0.6, 100),   # mean 0.7, sd 0
            summary("c", 0, 0.7, 0.3, 50), summary("c", 1, 0.7, 0.3, 50)]     # mean 0.7, sd 0, smaller
    assert sweep_table(rows, "val_accuracy")["point"].tolist() == ["c", "b", "a"]
    assert sweep_table(rows, "val_loss")["point"].iloc[0] == "c"
    metrics = pd.DataFrame({"val_accuracy": [0.5, 0.9, 0.9], "val_loss": [1.0, 0.4, 0.2]})
    assert best_epoch(metrics, "val_accuracy") == 1 and best_epoch(metrics, "val_loss") == 2


def test_test_images_are_scored_once_by_the_chosen_model_only(swept):
    config, flow = swept
    from augcache.data.dataset import read_index
    from augcache.training.full_model import predict_files

    index = read_index(flow.path("results/dataset/index.csv"))
    test = index[index["split"] == "test"]
    assert len(test) == 9 and test["sample_id"].str.startswith("test_dir/").all()
    # never trained on, never used to choose: in no manifest, in no feature store
    manifest = pd.read_csv(flow.path("results/manifest/epoch_0.csv"))
    assert not set(test["sample_id"]) & set(manifest["sample_id"])
    import h5py

    with h5py.File(flow.path("results/features/val.h5")) as handle:
        assert not set(test["sample_id"]) & {s.decode() for s in handle["sample_ids"][:]}
    scores = json.loads(flow.path("results/model/test_scores.json").read_text())
    predicted = predict_files(flow.path("results/model/model.keras"), flow.path("results/model/classes.json"),
                              test["path"].tolist(), batch_size=config["cache"]["batch_size"])
    assert scores["n"] == 9
    assert scores["accuracy"] == pytest.approx(float((predicted["label"].to_numpy() == test["label"].to_numpy()).mean()))
    assert f'id="test-accuracy">{scores["accuracy"]:.4f}<' in flow.path("results/report/report.html").read_text()
    logs = list(flow.path("results/logs").rglob("score_test.log"))
    assert len(logs) == 1
