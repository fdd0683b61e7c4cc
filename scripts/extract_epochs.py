import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

from augcache.cache import CacheSettings, extract_epoch
from augcache.conv_base import BaseSpec
from augcache.manifest import AugmentConfig
from augcache.pixels import open_pixels
from augcache.reuse import job_key, positional_inputs, reuse, store
from augcache.store.plan import check_run_fits, planned_stores

# Several epochs in turn, one start of TensorFlow. Each epoch is keyed as a job of one epoch
# (extract_epoch) would be, so it is reused when it was computed before (by a job of any size, or
# by this one before it was killed), and kept as soon as it is done.
inputs, params = snakemake.input, dict(snakemake.params.items())
epochs = params.pop("epochs")
todo = []
for epoch, manifest, out in zip(epochs, inputs.manifests, snakemake.output, strict=True):
    sources = [inputs.index, inputs.pixels] if "pixels" in inputs.keys() else [inputs.index]
    # the inputs of extract_epoch, in its order
    key, fields = job_key("extract_epoch", params, {"epoch": str(epoch)},
                          positional_inputs([*sources, manifest, inputs.base]))
    if "pixels" not in inputs.keys() or not reuse("extract_epoch", key, [out]):
        todo.append((epoch, manifest, out, key, fields))

if todo:
    check_run_fits(planned_stores(snakemake.config, inputs.index, inputs.base, todo[0][2])[1], todo[0][2])
    spec = BaseSpec.from_config(snakemake.params.base)
    pixels = open_pixels(snakemake.params.pixel_size, snakemake.params.base["resize"], inputs.get("pixels"),
                         inputs.index)
    built = None
    for epoch, manifest, out, key, fields in todo:
        built = extract_epoch(manifest, out, epoch=epoch, spec=spec,
                              aug=AugmentConfig.from_config(snakemake.params.augment),
                              settings=CacheSettings(threads=snakemake.threads, **snakemake.params.cache),
                              pixels=pixels, built=built)
        if "pixels" in inputs.keys():
            store("extract_epoch", key, fields, [out])
