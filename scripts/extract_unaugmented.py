import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import check_disk, finish_job, job_base, job_pixels, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse), when the pixels come from the
# pixel store (whose content hash is part of the key), not from image files decoded here
start_job(snakemake, reusable="pixels" in snakemake.input.keys())

# before any feature is computed: the run's stores still to write must fit the disk
check_disk(snakemake, snakemake.output[0])

from augcache.base.store_fields import CacheConfig
from augcache.data.dataset import read_index
from augcache.jobs.extraction import extract_unaugmented

extract_unaugmented(
    read_index(snakemake.input.index),
    snakemake.params.split,
    snakemake.output[0],
    spec=job_base(snakemake),
    cache=CacheConfig(threads=snakemake.threads, **snakemake.params.cache),
    pixels=job_pixels(snakemake),
    pooled=snakemake.params.get("pooled", False),
)
finish_job(snakemake)
