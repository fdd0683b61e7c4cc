import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import check_disk, finish_job, job_base, job_pixels, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse), when the pixels come from the
# pixel store (whose content hash is part of the key), not from image files decoded here
start_job(snakemake, reusable="pixels" in snakemake.input.keys())

# before any feature is computed: the run's stores still to write must fit the disk
check_disk(snakemake, snakemake.output[0])

from augcache.augmentation.manifest import AugmentConfig
from augcache.base.store_fields import CacheConfig
from augcache.jobs.extraction import extract_view

extract_view(
    snakemake.input.manifest,
    snakemake.output[0],
    view=int(snakemake.wildcards.view),
    spec=job_base(snakemake),
    aug=AugmentConfig.from_config(snakemake.params.augment),
    cache=CacheConfig(threads=snakemake.threads, **snakemake.params.cache),
    pixels=job_pixels(snakemake),
    # with eval.folds the views are of every labelled image, row for row the unaugmented store's
    split="train" if snakemake.params.get("pooled", False) else "val",
)
finish_job(snakemake)
