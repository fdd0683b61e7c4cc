from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.images import set_max_image_pixels

set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])

from augcache.cache import describe_base
from augcache.conv_base import BaseSpec
from augcache.dataset import read_index
from augcache.pixels import open_pixels

spec = BaseSpec.from_config(snakemake.params.base)
describe_base(
    spec,
    snakemake.output[0],
    pixels=open_pixels(snakemake.params.pixel_size, spec.resize, snakemake.input.get("pixels"),
                       snakemake.input.index),
    index=read_index(snakemake.input.index),
    dtype=snakemake.params.dtype,
)
