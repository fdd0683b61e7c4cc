import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

from augcache.cache import CacheSettings
from augcache.conv_base import BaseSpec
from augcache.experiment import RunInputs, RunSpec, run_training
from augcache.head import HeadConfig
from augcache.manifest import AugmentConfig

wildcards = snakemake.wildcards
run_training(
    RunSpec(
        mode=snakemake.params.mode,
        k=int(wildcards.get("k", 0)),
        repeat=int(wildcards.r),
        seed=int(snakemake.params.seed),
    ),
    RunInputs(
        index=snakemake.input.index,
        val_store=snakemake.input.val,
        epoch_stores=tuple(snakemake.input.get("stores", ())),
        manifests=tuple(snakemake.input.get("manifests", ())),
        noaug_store=snakemake.input.get("noaug"),
        pixel_store=snakemake.input.get("pixels"),
    ),
    spec=BaseSpec.from_config(snakemake.params.base),
    aug=AugmentConfig.from_config(snakemake.params.get("augment", {})),
    settings=CacheSettings(threads=snakemake.threads, **snakemake.params.cache),
    head=HeadConfig.from_config(snakemake.params.head),
    out_head=snakemake.output.head,
    out_metrics=snakemake.output.metrics,
    out_summary=snakemake.output.summary,
    # read from the config, not params: the budget changes how features are read, not the results
    memory_budget_mb=snakemake.config["train"]["memory_budget_mb"],
    pixel_size=snakemake.params.get("pixel_size"),
)
