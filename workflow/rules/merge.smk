rule merge_epochs:
    input:
        stores=expand(EPOCH_STORE, repeat_dir="", epoch=SETTINGS.epochs()),
        manifests=expand(MANIFEST, repeat_dir="", epoch=SETTINGS.epochs()),
    output:
        TRAIN_STORE,
    log:
        f"{LOGS}/merge_epochs.log",
    benchmark:
        f"{BENCHMARKS}/merge_epochs.tsv"
    conda:
        ENV
    script:
        "../../scripts/merge_epochs.py"


if config["cache"]["shards_per_epoch"] > 1:

    rule merge_shards:
        input:
            stores=epoch_shards(SHARD_STORE),
            records=epoch_shards(SHARD_RECORD),
        output:
            EPOCH_STORE,
        log:
            f"{LOGS}/{{repeat_dir}}merge_shards/epoch_{{epoch}}.log",
        benchmark:
            f"{BENCHMARKS}/{{repeat_dir}}merge_shards/epoch_{{epoch}}.tsv"
        conda:
            ENV
        script:
            "../../scripts/merge_shards.py"
