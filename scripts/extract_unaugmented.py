from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.images import set_max_image_pixels

set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])

from augcache.cache import CacheSettings, extract_unaugmented
from augcache.conv_base import BaseSpec
from augcache.dataset import read_index
from augcache.pixels import open_pixels

extract_unaugmented(
    read_index(snakemake.input.index),
    snakemake.params.split,
    snakemake.output[0],
    spec=BaseSpec.from_config(snakemake.params.base),
    settings=CacheSettings(threads=snakemake.threads, **snakemake.params.cache),
    pixels=open_pixels(snakemake.params.pixel_size, snakemake.params.base["resize"],
                       snakemake.input.get("pixels"), snakemake.input.index),
)
