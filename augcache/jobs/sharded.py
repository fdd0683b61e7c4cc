"""Reuse of an epoch computed in shards (cache.shards_per_epoch > 1).

A merged epoch store is the store one unsharded job of that epoch writes (see
:func:`augcache.store.merge.merge_shards`), so it takes that job's key: the key
:func:`augcache.jobs.job.start_job` gives ``extract_epoch``, computed by each shard job from the same
inputs, params (one shard) and threads. Sharded and unsharded runs share their epochs' entries.

Each shard job writes, beside its shard store, a record (``shard_<s>.json``): the epoch's key and
what computing the shard cost. When the epoch's entry exists, a shard job computes nothing: its
store is an empty placeholder naming the entry, and the merge job puts the entry in place. When
every shard was computed, the merge job keeps the merged store as the epoch's entry. Both are temp
outputs, deleted once the epoch store is made.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from augcache.jobs.table import JOBS

log = logging.getLogger(__name__)

# the kind a merged epoch is kept as: the unsharded job's of that epoch
EPOCH_KIND = JOBS["merge_shards"].reuse

PLACEHOLDER_FORMAT = "augcache-shard-placeholder"


def epoch_key_of_shard(snakemake) -> tuple[str, dict] | None:
    """(key, fields) of the unsharded job of this shard job's epoch; None when the pixels come from
    image files decoded by the job (no key covers their bytes)."""
    from augcache.jobs.job import key_of

    if "pixels" not in snakemake.input.keys():
        return None
    return key_of(snakemake, EPOCH_KIND, params=dict(snakemake.params.items()) | {"shards": 1},
                  wildcards={k: v for k, v in snakemake.wildcards.items() if k != "shard"})


def start_shard(snakemake) -> tuple[str, dict, bool] | None:
    """Before a shard job computes: when its epoch's entry exists (and the job may reuse), write the
    placeholder and the record and end the process; otherwise (key, fields, told to compute) for
    :func:`finish_shard` (None without a key)."""
    from augcache.core.atomic import atomic_path, write_json
    from augcache.jobs.job import told_to_compute, write_reuse_record
    from augcache.jobs.reuse import read_entry, rekey_former

    keyed = epoch_key_of_shard(snakemake)
    if keyed is None:
        return None
    key, fields = keyed
    told = told_to_compute(snakemake)
    if not told:
        rekey_former(EPOCH_KIND, key, fields)  # an entry of the version before this one
    if not told and read_entry(EPOCH_KIND, key) is not None:
        import h5py

        with atomic_path(snakemake.output.store, ".h5") as tmp, h5py.File(tmp, "w") as handle:
            handle.attrs["format"] = PLACEHOLDER_FORMAT
            handle.attrs["epoch_entry"] = key
        write_json(snakemake.output.record, {"epoch_key": key, "fields": fields, "reused": True,
                                             "told": False, "cost": None})
        # nothing computed: the merge job accounts for the epoch's cost
        write_reuse_record(snakemake, [{"key": key, "cost": {"seconds": 0.0, "max_rss_mb": 0.0}}], whole_job=True)
        log.info("epoch kept as %s: shard not computed (the merge puts the epoch in place)", key)
        sys.exit(0)
    return key, fields, bool(told)


def finish_shard(snakemake, started) -> None:
    """After a shard job computed its store: its record (the epoch's key, what the shard cost)."""
    from augcache.core.atomic import write_json
    from augcache.jobs.job import process_cost

    key, fields, told = started if started is not None else (None, None, False)
    write_json(snakemake.output.record, {"epoch_key": key, "fields": fields, "reused": False, "told": told,
                                         "cost": process_cost()})


def merge_epoch(stores, record_paths, out_path) -> tuple[str, dict | None]:
    """The epoch store at out_path from its shards (their stores, and the records their jobs
    wrote): the kept epoch put in place when a shard names it, else the shards merged and kept as
    the epoch's entry. A placeholder whose entry is gone (removed by ``augcache gc`` meanwhile) is
    deleted with its record, so that the next run computes that shard; ValueError says so.
    Returns (what was done, for the log; the entry's record when it was put in place)."""
    from augcache.jobs.reuse import reuse, store
    from augcache.store.merge import merge_shards

    records = [json.loads(Path(p).read_text()) for p in record_paths]
    keys = {r["epoch_key"] for r in records}
    if len(keys) != 1:
        raise ValueError(f"{out_path}: its shards were made for different keys ({', '.join(sorted(map(str, keys)))}); "
                         "delete them and run the workflow again")
    (key,) = keys
    if any(r["reused"] for r in records):
        entry = reuse(EPOCH_KIND, key, [out_path])
        if entry is not None:
            return f"reused {key}", entry
        for store_path, record_path, record in zip(stores, record_paths, records):
            if record["reused"]:
                Path(store_path).unlink(missing_ok=True)
                Path(record_path).unlink(missing_ok=True)
        raise ValueError(f"{out_path}: the kept epoch {key} that its shards named was removed meanwhile "
                         "(augcache gc?); run the workflow again: those shards will be computed")
    attrs = merge_shards(stores, out_path)
    if key is not None:
        cost = {"seconds": round(sum(r["cost"]["seconds"] for r in records), 3),
                "max_rss_mb": max(r["cost"]["max_rss_mb"] for r in records)}
        store(EPOCH_KIND, key, records[0]["fields"], [out_path], cost=cost,
              replace=any(r["told"] for r in records))
    return f"merged {attrs['shards']} shards of epoch {attrs['epoch']}: {attrs['n_samples']} samples", None
