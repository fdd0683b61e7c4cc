import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

from augcache.store.merge import merge_shards

attrs = merge_shards(snakemake.input, snakemake.output[0])
print(f"merged {attrs['shards']} shards of epoch {attrs['epoch']}: {attrs['n_samples']} samples")
