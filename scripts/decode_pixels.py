import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.data.pixels import decode_shard

decode_shard(
    snakemake.input[0],
    snakemake.output.pixels,
    snakemake.output.skipped,
    snakemake.params.pixel_size,
    snakemake.params.resize,
    threads=snakemake.threads,
    shard=int(snakemake.wildcards.shard),
    shards=int(snakemake.params.shards),
)
