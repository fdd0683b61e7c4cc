import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import (
    check_disk,
    epoch_parts,
    job_base,
    job_pixels,
    keep,
    process_cost,
    start_job,
    write_reuse_record,
)

start_job(snakemake)

import time

from augcache.augmentation.manifest import AugmentConfig
from augcache.base.store_fields import CacheConfig
from augcache.jobs.extraction import extract_epoch

# Several epochs in turn, one start of TensorFlow. Each epoch is keyed as a job of one epoch would be
# (augcache.jobs.job.epoch_parts), so it is reused when it was computed before (by a job of any size,
# or by this one before it was killed), and kept as soon as it is done.
parts = epoch_parts(snakemake)
todo = [(epoch, manifest, out, keyed) for epoch, manifest, out, keyed, record in parts if record is None]
reused = [record for *_, record in parts if record is not None]
if reused:
    # the job's own seconds cover what it computed; those of the reused epochs are added
    write_reuse_record(snakemake, reused, whole_job=not todo)

if todo:
    check_disk(snakemake, todo[0][2])
    spec = job_base(snakemake)
    pixels = job_pixels(snakemake)
    built = None
    # an epoch's cost: its own seconds, plus the job's start shared by the epochs it computes
    start = process_cost()["seconds"] / len(todo)
    for epoch, manifest, out, keyed in todo:
        began = time.monotonic()
        built = extract_epoch(manifest, out, epoch=epoch, spec=spec,
                              aug=AugmentConfig.from_config(snakemake.params.augment),
                              cache=CacheConfig(threads=snakemake.threads, **snakemake.params.cache),
                              pixels=pixels, built=built)
        if keyed is not None:
            keep(keyed, {"seconds": round(start + time.monotonic() - began, 3),
                         "max_rss_mb": process_cost()["max_rss_mb"]})
