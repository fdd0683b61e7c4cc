import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import finish_job, input_files, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse)
start_job(snakemake, reusable=True)

from augcache.data.dataset import build_index, index_of_shards, write_index
from augcache.data.pixels import index_with_pixel_store

params = snakemake.params
# the demo's images as the job's input names them (a variant's below its folder), or the user's data
images = input_files(snakemake, "images")
source = images[0] if images else params.source
if "candidates" in snakemake.input.keys():
    # data.decode_shards > 1: the files were listed, then checked and decoded by the shard jobs
    table, skipped = index_of_shards(snakemake.input.candidates, snakemake.input.listing_skipped,
                                     input_files(snakemake, "shard_skipped"), source, params.val_fraction,
                                     params.seed, params.on_bad_image)
elif "pixels" in snakemake.output.keys():
    table, skipped = index_with_pixel_store(
        source, params.val_fraction, params.seed, params.on_bad_image, snakemake.threads,
        snakemake.output.pixels, params.pixel_size, params.resize, test_dir=params.get("test_dir"),
    )
else:
    table, skipped = build_index(
        source, params.val_fraction, params.seed, on_bad_image=params.on_bad_image,
        threads=snakemake.threads, test_dir=params.get("test_dir"),
    )
write_index(skipped, snakemake.output.skipped)
write_index(table, snakemake.output.index)
print(table.groupby(["split", "label"]).size().to_string())
if len(skipped):
    print(f"{len(skipped)} file(s) skipped (data.on_bad_image: skip), listed in {snakemake.output.skipped}:")
    print(skipped.to_string(index=False))
finish_job(snakemake)
# a k-NN asking for more neighbours than there are training images stops the run now, not at its end
# (the index is kept: the next run reuses it)
from augcache.jobs.settings import Settings

Settings(snakemake.config).check_knn_bank(int((table["split"] == "train").sum()))
