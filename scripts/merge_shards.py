import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job, write_reuse_record

start_job(snakemake)

from augcache.jobs.sharded import merge_epoch

# the epoch's kept store, when its shards name one; else the shards merged, and kept (augcache.jobs.sharded)
done, entry = merge_epoch(list(snakemake.input.stores), list(snakemake.input.records), snakemake.output[0])
if entry is not None:
    write_reuse_record(snakemake, [entry], whole_job=True)
print(done)
