from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.dataset import build_index, write_index

table, skipped = build_index(
    snakemake.params.source,
    snakemake.params.val_fraction,
    snakemake.params.seed,
    on_bad_image=snakemake.params.on_bad_image,
    threads=snakemake.threads,
)
write_index(skipped, snakemake.output.skipped)
write_index(table, snakemake.output.index)
print(table.groupby(["split", "label"]).size().to_string())
if len(skipped):
    print(f"{len(skipped)} file(s) skipped (data.on_bad_image: skip), listed in {snakemake.output.skipped}:")
    print(skipped.to_string(index=False))
