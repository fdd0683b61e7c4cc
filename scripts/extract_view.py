import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import finish_job, job_base, start_job

# outputs made before from the same key are reused (augcache.reuse), when the pixels come from the
# pixel store (whose content hash is part of the key), not from image files decoded here
start_job(snakemake, reusable="pixels" in snakemake.input.keys())

from augcache.store.plan import check_run_fits, planned_stores

# before any feature is computed: the run's stores still to write must fit the disk (read from the
# config, not params: the check changes no result)
output = snakemake.output[0]
check_run_fits(planned_stores(snakemake.config, snakemake.input.index, snakemake.input.base, output)[1], output)

from augcache.extraction_jobs import extract_view
from augcache.manifest import AugmentConfig
from augcache.pixels import open_pixels
from augcache.settings import CacheSettings

extract_view(
    snakemake.input.manifest,
    snakemake.output[0],
    view=int(snakemake.wildcards.view),
    spec=job_base(snakemake),
    aug=AugmentConfig.from_config(snakemake.params.augment),
    settings=CacheSettings(threads=snakemake.threads, **snakemake.params.cache),
    pixels=open_pixels(snakemake.params.pixel_size, snakemake.params.base["resize"],
                       snakemake.input.get("pixels"), snakemake.input.index),
)
finish_job(snakemake)
