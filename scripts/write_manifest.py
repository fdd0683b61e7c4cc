import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import finish_job, start_job

# a manifest made before from the same key is put back (augcache.jobs.reuse), so that the report counts
# what making it cost, like the stores made from it
start_job(snakemake, reusable=True)

from augcache.augmentation.manifest import AugmentConfig, build_manifest, view_manifest, write_manifest
from augcache.data.dataset import read_index
from augcache.data.folds import labelled_rows

index = read_index(snakemake.input[0])
aug = AugmentConfig.from_config(snakemake.params.augment)
if "view" in snakemake.wildcards.keys():
    # a test-time view of the validation images (their own seed stream, sample_id order)
    # (with eval.folds, of every labelled image, whose every fold's runs are scored with them)
    pooled = snakemake.params.get("pooled", False)
    table = view_manifest(labelled_rows(index, pooled) if pooled else index[index["split"] == "val"], aug, seed=int(snakemake.params.seed),
                          view=int(snakemake.wildcards.view), size=tuple(snakemake.params.size))
else:
    # the training images, or with eval.folds every labelled image
    table = build_manifest(labelled_rows(index, snakemake.params.get("pooled", False)), aug, seed=int(snakemake.params.seed),
                           epoch=int(snakemake.wildcards.epoch), size=tuple(snakemake.params.size))
write_manifest(table, snakemake.output[0])
finish_job(snakemake)
