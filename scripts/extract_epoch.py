from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.images import set_max_image_pixels

set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])

from augcache.cache import CacheSettings, extract_epoch
from augcache.conv_base import BaseSpec
from augcache.manifest import AugmentConfig
from augcache.pixels import open_pixels

extract_epoch(
    snakemake.input.manifest,
    snakemake.output[0],
    epoch=int(snakemake.wildcards.epoch),
    spec=BaseSpec.from_config(snakemake.params.base),
    aug=AugmentConfig.from_config(snakemake.params.augment),
    settings=CacheSettings(threads=snakemake.threads, **snakemake.params.cache),
    pixels=open_pixels(snakemake.params.pixel_size, snakemake.params.base["resize"],
                       snakemake.input.get("pixels"), snakemake.input.index),
    shard=int(snakemake.wildcards.get("shard", 0)),
    shards=int(snakemake.params.get("shards", 1)),
)
