from augcache.log import log_to

log_to(snakemake.log[0])

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
)
