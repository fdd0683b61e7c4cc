from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.dataset import index_folder, write_index

table = index_folder(snakemake.params.data_dir, snakemake.params.val_fraction, snakemake.params.seed)
write_index(table, snakemake.output[0])
print(table.groupby(["split", "label"]).size().to_string())
