import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.store.merge import merge_epochs

attrs = merge_epochs(snakemake.input.stores, snakemake.input.manifests, snakemake.output[0])
print(f"merged {attrs['epochs']} epochs of {attrs['n_samples']} samples: "
      f"{attrs['bytes_per_sample_epoch']} bytes per sample-epoch "
      f"({attrs['disk_bytes_per_sample_epoch']:.0f} on disk)")
