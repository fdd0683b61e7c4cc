from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.store import merge_shards

attrs = merge_shards(snakemake.input, snakemake.output[0])
print(f"merged {attrs['shards']} shards of epoch {attrs['epoch']}: {attrs['n_samples']} samples")
