rule merge_epochs:
    input:
        stores=expand(EPOCH_STORE, repeat_dir="", epoch=SETTINGS.epochs()),
        manifests=expand(MANIFEST, repeat_dir="", epoch=SETTINGS.epochs()),
    output:
        TRAIN_STORE,
    log:
        JOBS["merge_epochs"].log(),
    benchmark:
        JOBS["merge_epochs"].benchmark()
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
            JOBS["merge_shards"].log(),
        benchmark:
            JOBS["merge_shards"].benchmark()
        conda:
            ENV
        script:
            "../../scripts/merge_shards.py"
