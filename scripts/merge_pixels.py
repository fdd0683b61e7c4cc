import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.data.pixels import merge_pixel_shards

attrs = merge_pixel_shards(snakemake.input.shards, snakemake.input.index, snakemake.output[0])
print(f"{attrs['n_images']} images, pixels sha256 {attrs['pixels_sha256']}")
