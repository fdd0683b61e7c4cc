import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

import json
from pathlib import Path

from augcache.core.atomic import write_json
from augcache.core.provenance import sha256_file
from augcache.report.tracking import track

inputs = snakemake.input
manifests = {path: sha256_file(path) for path in inputs.manifests}
# eval.folds: the hash of repeat r's split
folds = [sha256_file(path) for path in inputs.folds] if "folds" in inputs.keys() else []


def hashes_of(summary):
    """A run's manifests' hashes (the cache it read: its repeat's, or with eval.folds repeat 0's),
    and its repeat's folds' (eval.folds)."""
    repeat = int(summary["repeat"])
    cache = 0 if summary.get("folds") else repeat
    prefix = f"repeat_{cache}/" if cache else ""
    found = {f"manifest_{e}_sha256": manifests[path] for e in range(int(summary.get("k") or 0))
             for path in manifests if path.endswith(f"results/{prefix}manifest/epoch_{e}.csv")}
    if summary.get("fold") is not None:
        found["folds_sha256"] = folds[repeat]
    return found


settings = snakemake.params.mlflow
record = track(settings["uri"], settings.get("experiment", "augcache"),
               [str(Path(p).parent) for p in inputs.summaries], snakemake.params.config,
               evaluation=json.loads(Path(inputs.evaluation).read_text()),
               knn=json.loads(Path(inputs.knn).read_text()) if "knn" in inputs.keys() else None,
               artifacts=[inputs.report, inputs.model, *inputs.manifests], hashes_of=hashes_of)
write_json(snakemake.output[0], record)
