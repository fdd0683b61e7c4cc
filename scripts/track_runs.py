import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

import json
from pathlib import Path

from augcache.core.atomic import write_json
from augcache.core.paths import MANIFEST, VARIANT_PREFIX, repeat_prefix
from augcache.core.provenance import sha256_file
from augcache.report.tracking import track, variant_of

inputs = snakemake.input
manifests = {path: sha256_file(path) for path in inputs.manifests}
# eval.folds: the hash of repeat r's split
folds = [sha256_file(path) for path in inputs.folds] if "folds" in inputs.keys() else []


def hashes_of(run_dir, summary):
    """A run's manifests' hashes (the cache it read: its repeat's, or with eval.folds repeat 0's;
    a variant's run, its variant's), and its repeat's folds' (eval.folds)."""
    repeat = int(summary["repeat"])
    cache = 0 if summary.get("folds") else repeat
    variant = variant_of(run_dir)
    root = f"{VARIANT_PREFIX.format(name=variant)}/" if variant else ""
    epochs = range(int(summary.get("k") or 0))
    paths = {e: root + MANIFEST.format(repeat_dir=repeat_prefix(cache), epoch=e) for e in epochs}
    found = {f"manifest_{e}_sha256": manifests[path] for e, path in paths.items() if path in manifests}
    if summary.get("fold") is not None:
        found["folds_sha256"] = folds[repeat]
    return found


settings = snakemake.params.mlflow
record = track(settings["uri"], settings.get("experiment", "augcache"),
               [str(Path(p).parent) for p in inputs.summaries], snakemake.params.configs,
               evaluation=json.loads(Path(inputs.evaluation).read_text()),
               knn=json.loads(Path(inputs.knn).read_text()) if "knn" in inputs.keys() else None,
               artifacts=[inputs.report, inputs.model, *inputs.manifests], hashes_of=hashes_of)
write_json(snakemake.output[0], record)
