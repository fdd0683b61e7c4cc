from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.store import merge_epochs

attrs = merge_epochs(snakemake.input.stores, snakemake.input.manifests, snakemake.output[0])
print(f"merged {attrs['epochs']} epochs of {attrs['n_samples']} samples: "
      f"{attrs['bytes_per_sample_epoch']} bytes per sample-epoch "
      f"({attrs['disk_bytes_per_sample_epoch']:.0f} on disk)")
