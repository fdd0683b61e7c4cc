import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import finish_job, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse)
start_job(snakemake, reusable=True)

from augcache.data.demo import train_demo_base

demo = snakemake.params.demo
height, width = snakemake.params.image_size
if height != width:
    raise ValueError(f"data.image_size: the demo base needs square images, got {height}x{width}")
train_demo_base(
    snakemake.output[0],
    size=height,
    per_class=demo["base_pretext_per_class"],
    epochs=demo["base_epochs"],
    seed=snakemake.params.seed,
)
finish_job(snakemake)
