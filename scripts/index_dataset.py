import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import finish_job, start_job

# outputs made before from the same key are reused (augcache.reuse)
start_job(snakemake, reusable=True)

from augcache.dataset import build_index, write_index
from augcache.pixels import index_with_pixel_store

params = snakemake.params
if "pixels" in snakemake.output.keys():
    table, skipped = index_with_pixel_store(
        params.source, params.val_fraction, params.seed, params.on_bad_image, snakemake.threads,
        snakemake.output.pixels, params.pixel_size, params.resize, test_dir=params.get("test_dir"),
    )
else:
    table, skipped = build_index(
        params.source, params.val_fraction, params.seed, on_bad_image=params.on_bad_image,
        threads=snakemake.threads, test_dir=params.get("test_dir"),
    )
write_index(skipped, snakemake.output.skipped)
write_index(table, snakemake.output.index)
print(table.groupby(["split", "label"]).size().to_string())
if len(skipped):
    print(f"{len(skipped)} file(s) skipped (data.on_bad_image: skip), listed in {snakemake.output.skipped}:")
    print(skipped.to_string(index=False))
finish_job(snakemake)
