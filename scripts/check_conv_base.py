import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import finish_job, job_base, start_job

# outputs made before from the same key are reused (augcache.reuse), when the pixels come from the
# pixel store (whose content hash is part of the key), not from image files decoded here
start_job(snakemake, reusable="pixels" in snakemake.input.keys())

from augcache.extraction_jobs import check_base
from augcache.dataset import read_index
from augcache.pixels import open_pixels

spec = job_base(snakemake)
check_base(
    spec,
    snakemake.output[0],
    pixels=open_pixels(snakemake.params.pixel_size, spec.resize, snakemake.input.get("pixels"),
                       snakemake.input.index),
    index=read_index(snakemake.input.index),
    dtype=snakemake.params.dtype,
)
finish_job(snakemake)
