from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.cache import describe_base
from augcache.conv_base import BaseSpec

describe_base(BaseSpec.from_config(snakemake.params.base), snakemake.output[0])
