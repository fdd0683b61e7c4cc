import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.data.demo import write_demo_images

demo = snakemake.params.demo
write_demo_images(
    snakemake.output[0],
    size=demo["image_size"],
    train_per_class=demo["train_per_class"],
    val_per_class=demo["val_per_class"],
    seed=snakemake.params.seed,
)
