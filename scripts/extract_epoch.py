import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import check_disk, finish_job, job_base, job_pixels, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse), when the pixels come from the
# pixel store (whose content hash is part of the key), not from image files decoded here; a shard
# of an epoch (cache.shards_per_epoch > 1) is not computed when its epoch was kept before, and the
# merge keeps the epoch (augcache.jobs.sharded)
sharded = "shard" in snakemake.wildcards.keys()
start_job(snakemake, reusable="pixels" in snakemake.input.keys() and not sharded)
if sharded:
    from augcache.jobs.sharded import finish_shard, start_shard

    started = start_shard(snakemake)

# before any feature is computed: the run's stores still to write must fit the disk
check_disk(snakemake, snakemake.output[0])

from augcache.augmentation.manifest import AugmentConfig
from augcache.base.store_fields import CacheConfig
from augcache.jobs.extraction import extract_epoch

extract_epoch(
    snakemake.input.manifest,
    snakemake.output[0],
    epoch=int(snakemake.wildcards.epoch),
    spec=job_base(snakemake),
    aug=AugmentConfig.from_config(snakemake.params.augment),
    cache=CacheConfig(threads=snakemake.threads, **snakemake.params.cache),
    pixels=job_pixels(snakemake),
    shard=int(snakemake.wildcards.get("shard", 0)),
    shards=int(snakemake.params.get("shards", 1)),
)
if sharded:
    finish_shard(snakemake, started)
finish_job(snakemake)
