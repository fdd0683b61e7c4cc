import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.base.conv_base import BaseSpec, fetch_imagenet_weights

spec = BaseSpec.from_config({**snakemake.params.base, "image_size": snakemake.params.image_size})
digest = fetch_imagenet_weights(spec, snakemake.output[0])
print(f"{spec.architecture} ImageNet weights -> {snakemake.output[0]} (sha256 {digest})")
