rule merge_epochs:
    input:
        stores=expand(EPOCH_STORE, rep="", epoch=epochs()),
        manifests=expand(MANIFEST, rep="", epoch=epochs()),
    output:
        TRAIN_STORE,
    log:
        f"{LOGS}/merge_epochs.log",
    conda:
        ENV
    script:
        "../../scripts/merge_epochs.py"


if config["cache"]["shards_per_epoch"] > 1:

    rule merge_shards:
        input:
            epoch_shards,
        output:
            EPOCH_STORE,
        log:
            f"{LOGS}/{{rep}}merge_shards/epoch_{{epoch}}.log",
        conda:
            ENV
        script:
            "../../scripts/merge_shards.py"
