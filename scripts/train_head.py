import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import finish_job, input_files, job_base, start_job
from augcache.training.modes import MODES

# outputs made before from the same key are reused (augcache.jobs.reuse), unless the run decodes image files
# (a mode that runs the base without the pixel store)
start_job(snakemake, reusable=not MODES[snakemake.params.mode].runs_base or "pixels" in snakemake.input.keys())

from augcache.augmentation.feature_augment import FeatureAugmentConfig
from augcache.augmentation.manifest import AugmentConfig
from augcache.base.store_fields import CacheConfig
from augcache.training.experiment import RunInputs, RunOutputs, RunSpec, TrainingConfig, run_training
from augcache.training.finetune import FinetuneConfig
from augcache.training.head import HeadConfig
from augcache.training.kinds import VAL

params, inputs = snakemake.params, snakemake.input
run_training(
    RunSpec(
        mode=params.mode,
        k=int(snakemake.wildcards.get("k", params.get("k", 0))),
        repeat=int(snakemake.wildcards.repeat),
        seed=int(params.seed),
        folds=int(params.get("folds", 0)),
        fold=params.get("fold"),
    ),
    RunInputs(
        index=inputs.index,
        val_store=inputs[VAL.name],
        train_stores=tuple(input_files(snakemake, "stores")),
        manifests=tuple(input_files(snakemake, "manifests")),
        pixel_store=inputs.get("pixels"),
        folds=inputs.get("folds"),
        fold_val=inputs.get("fold_val"),
        fold_metrics=tuple(input_files(snakemake, "fold_metrics")),
    ),
    TrainingConfig(
        spec=job_base(snakemake),
        aug=AugmentConfig.from_config(params.get("augment", {})),
        cache=CacheConfig(threads=snakemake.threads, **params.cache),
        head=HeadConfig.from_config(params.head),
        # read from the config, not params: the budget changes how features are read, not the results
        memory_budget_mb=snakemake.config["train"]["memory_budget_mb"],
        pixel_size=params.get("pixel_size"),
        finetune=FinetuneConfig.from_config(params.get("finetune", {})),
        feature_augment=FeatureAugmentConfig.from_config(params.get("feature_augment")),
    ),
    RunOutputs(**dict(snakemake.output.items())),
)
finish_job(snakemake)
