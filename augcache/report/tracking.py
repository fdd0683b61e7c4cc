"""Every head run of a workflow run in an experiment tracker (``tracking.mlflow``; MLflow, the
``[mlflow]`` extra).

Each training run becomes an MLflow run: its settings as parameters, its curves per head epoch
(loss, accuracy, val_loss, val_accuracy), its summary's final and best numbers, macro-averaged and
test-time-view scores, tagged with its mode, K, repeat, fold and variant and with the hashes that
make it reproducible (weights, manifests, folds). A variant's runs (the cached runs the report
compares) log the variant's own settings and manifests. They are children of one run for the workflow
run, which holds the k-NN scores and, as artifacts, the report, the exported model and the
manifests.

A run is known by its key, the sha256 of its summary and metrics (the bytes a reused run keeps): a
run already in the experiment under its key is not logged again, and an invocation that logs no new
run adds no parent either. A tracker that cannot be reached (or refuses) gives a warning naming the
key, and the job still ends: the record says what happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd

from augcache.core.paths import VARIANT_PREFIX, below_results

log = logging.getLogger(__name__)

KEY_TAG = "augcache.key"
CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")
NUMBERS = ("final_val_accuracy", "best_val_accuracy", "best_val_loss", "best_epoch", "final_val_macro_accuracy",
           "best_head_val_macro_accuracy", "conv_seconds", "head_seconds", "total_seconds", "disk_bytes", "n_train")
SETTINGS = ("seed", "head", "cache", "augment", "conv_base", "feature_augment", "finetune", "eval")


def variant_of(run_dir) -> str:
    """The variant a run folder belongs to (below results/variants/<name>/), "" for the main run's."""
    pattern = re.escape(VARIANT_PREFIX).replace(re.escape("{name}"), "([^/]+)")
    found = re.match(pattern + "/", str(run_dir))
    return found.group(1) if found else ""


def artifact_folder(path) -> str | None:
    """Where a file goes among a parent run's artifacts: its folder below results/
    (``manifest``, ``repeat_1/manifest``, ``variants/<name>/results/manifest``, ``model``), so
    that files of one name (each repeat's epoch_0.csv) stay apart."""
    return below_results(Path(path).parent)


def run_key(run_dir) -> str:
    """A run's identity: the sha256 of its summary and metrics."""
    digest = hashlib.sha256()
    for name in ("summary.json", "metrics.csv"):
        digest.update(Path(run_dir, name).read_bytes())
    return digest.hexdigest()


def flat(value, prefix: str = "") -> dict[str, str]:
    """A config section as MLflow parameters: dotted keys, values as text (at most 500 characters)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): json.dumps(value)[:500]}


def run_record(run_dir, configs: dict, evaluation: dict | None, hashes) -> dict:
    """What one training run logs: its name, parameters, metrics per epoch, numbers, tags. configs:
    {variant: its settings} ("": the main run's); hashes(run_dir, summary) -> its provenance tags
    beside its weights' hash."""
    summary = json.loads(Path(run_dir, "summary.json").read_text())
    curves = pd.read_csv(Path(run_dir, "metrics.csv"))
    variant = variant_of(run_dir)
    config = configs[variant]
    name = "/".join(part for part in (variant, summary["mode"], Path(run_dir).name) if part)
    params = {k: v for section in SETTINGS if section in config for k, v in flat(config[section], f"{section}.").items()}
    numbers = {key: float(summary[key]) for key in NUMBERS if summary.get(key) is not None}
    for row in (evaluation or {}).get("runs", []):
        if row.get("run") == str(run_dir) and row.get("head") == "final":
            numbers.update(tta_accuracy=float(row["tta_accuracy"]), tta_macro_accuracy=float(row["tta_macro_accuracy"]))
    tags = {"mode": summary["mode"], "k": str(summary.get("k")), "repeat": str(summary.get("repeat")),
            "fold": "" if summary.get("fold") is None else str(summary["fold"]), "variant": variant,
            "weights_sha256": str(summary.get("weights_sha256", "")), **hashes(run_dir, summary),
            KEY_TAG: run_key(run_dir)}
    return {"name": name, "params": params, "curves": curves, "numbers": numbers, "tags": tags}


def _experiment(client, name: str, uri: str) -> str:
    """The experiment's id, made when missing: for a local database (sqlite:///…) with its artifacts
    beside it (MLflow's default is ./mlruns, below whatever folder the job runs in)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts" / name).as_uri()
    return client.create_experiment(name, artifact_location=location)


def _log_run(client, experiment: str, record: dict, parent: str | None) -> str:
    from mlflow.entities import Metric, Param

    tags = dict(record["tags"], **({"mlflow.parentRunId": parent} if parent else {}))
    run = client.create_run(experiment, run_name=record["name"], tags=tags)
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in record["params"].items()]
    metrics = [Metric(column, float(row[column]), 0, int(row["epoch"]))
               for _, row in record["curves"].iterrows() for column in CURVES if column in row]
    metrics += [Metric(key, value, 0, 0) for key, value in record.get("numbers", {}).items()]
    for start in range(0, max(len(params), len(metrics), 1), 100):  # MLflow takes 100 params a batch
        client.log_batch(run_id, metrics=metrics[start:start + 100], params=params[start:start + 100])
    client.set_terminated(run_id)
    return run_id


def track(uri: str, experiment: str, run_dirs, configs: dict, evaluation: dict | None = None,
          knn: dict | None = None, artifacts=(), hashes_of=lambda run_dir, summary: {}) -> dict:
    """Log every run of run_dirs not logged before (see the module's description) under a new parent
    run with the artifacts; return the record of what was logged (or why nothing was).

    configs: {variant: the settings its runs log as parameters}, "" for the main run's.
    hashes_of(run_dir, summary): the provenance tags of a run beside its weights' hash (manifests,
    folds)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # an unreachable server fails fast
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment(client, experiment, uri)
        records = [run_record(run_dir, configs, evaluation, hashes_of) for run_dir in run_dirs]
        known = {r.data.tags.get(KEY_TAG) for r in client.search_runs([experiment_id], max_results=50000)}
        new = [r for r in records if r["tags"][KEY_TAG] not in known]
        if not new:
            log.info("tracking.mlflow: every one of the %d runs is in %s already; nothing logged", len(records), uri)
            return {"uri": uri, "experiment": experiment, "logged": [], "known": len(records)}
        parent = client.create_run(experiment_id, run_name="workflow", tags={"augcache.role": "workflow"})
        numbers = {f"knn_{bank['bank']}_{key}": float(bank[key]) for bank in (knn or {}).get("banks", [])
                   for key in ("accuracy", "macro_accuracy")}
        if numbers:
            client.log_batch(parent.info.run_id, metrics=[Metric(k.replace(" ", "_"), v, 0, 0)
                                                          for k, v in numbers.items()])
        for path in artifacts:
            client.log_artifact(parent.info.run_id, str(path), artifact_folder(path))
        logged = [{"run": record["name"], "mlflow_run_id": _log_run(client, experiment_id, record, parent.info.run_id)}
                  for record in new]
        client.set_terminated(parent.info.run_id)
        log.info("tracking.mlflow: %d new runs (of %d) logged to %s, experiment %r", len(logged), len(records),
                 uri, experiment)
        return {"uri": uri, "experiment": experiment, "parent": parent.info.run_id, "logged": logged,
                "known": len(records) - len(new)}
    except Exception as err:  # the tracker is optional: a warning, and the workflow goes on
        log.warning("tracking.mlflow.uri: %s could not be reached or refused the runs (%s: %s); nothing more "
                    "was logged", uri, type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        return {"uri": uri, "experiment": experiment, "logged": [], "error": f"{type(err).__name__}: {err}"}
