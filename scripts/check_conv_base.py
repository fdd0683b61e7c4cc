import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

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
