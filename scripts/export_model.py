import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

from augcache.conv_base import BaseSpec
from augcache.dataset import class_names, read_index
from augcache.full_model import export_full_model

export_full_model(
    BaseSpec.from_config(snakemake.params.base),
    snakemake.input.head,
    class_names(read_index(snakemake.input.index)),
    snakemake.output.model,
    snakemake.output.classes,
    pixel_size=snakemake.params.pixel_size,
    out_saved_model=snakemake.output.saved_model,
)
