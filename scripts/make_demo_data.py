from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.demo import write_demo_images

demo = snakemake.params.demo
write_demo_images(
    snakemake.output[0],
    size=demo["image_size"],
    train_per_class=demo["train_per_class"],
    val_per_class=demo["val_per_class"],
    seed=snakemake.params.seed,
)
