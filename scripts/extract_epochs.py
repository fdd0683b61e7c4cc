import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import (check_disk, input_files, job_base, job_pixels, process_cost, start_job, told_to_compute,
                          uses_gpu, write_reuse_record)

start_job(snakemake)

import time

from augcache.augmentation.manifest import AugmentConfig
from augcache.base.store_fields import CacheSettings
from augcache.jobs.extraction import extract_epoch
from augcache.jobs.reuse import job_key, positional_inputs, reuse, store

# Several epochs in turn, one start of TensorFlow. Each epoch is keyed as a job of one epoch
# (extract_epoch) would be, so it is reused when it was computed before (by a job of any size, or
# by this one before it was killed), and kept as soon as it is done.
inputs, params = snakemake.input, dict(snakemake.params.items())
epochs = params.pop("epochs")
todo, reused = [], []
told = told_to_compute(snakemake)
for epoch, manifest, out in zip(epochs, inputs.manifests, snakemake.output, strict=True):
    sources = [inputs.index, inputs.pixels] if "pixels" in inputs.keys() else [inputs.index]
    # the inputs of extract_epoch, in its order
    key, fields = job_key("extract_epoch", params, {"epoch": str(epoch)},
                          positional_inputs([*sources, inputs.base, *input_files(snakemake, "base_files"), manifest]),
                          threads=snakemake.threads, gpu=uses_gpu(snakemake))
    record = reuse("extract_epoch", key, [out]) if "pixels" in inputs.keys() and not told else None
    if record is None:
        todo.append((epoch, manifest, out, key, fields))
    else:
        reused.append(record)
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
    for epoch, manifest, out, key, fields in todo:
        began = time.monotonic()
        built = extract_epoch(manifest, out, epoch=epoch, spec=spec,
                              aug=AugmentConfig.from_config(snakemake.params.augment),
                              settings=CacheSettings(threads=snakemake.threads, **snakemake.params.cache),
                              pixels=pixels, built=built)
        if "pixels" in inputs.keys():
            cost = {"seconds": round(start + time.monotonic() - began, 3), "max_rss_mb": process_cost()["max_rss_mb"]}
            store("extract_epoch", key, fields, [out], cost=cost, replace=bool(told))
