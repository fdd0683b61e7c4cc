import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import finish_job, job_base, job_pixels, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse), when the pixels come from the
# pixel store (whose content hash is part of the key), not from image files decoded here
start_job(snakemake, reusable="pixels" in snakemake.input.keys())

from augcache.data.dataset import read_index
from augcache.jobs.extraction import check_base

spec = job_base(snakemake)
check_base(
    spec,
    snakemake.output[0],
    pixels=job_pixels(snakemake),
    index=read_index(snakemake.input.index),
    dtype=snakemake.params.dtype,
)
finish_job(snakemake)
