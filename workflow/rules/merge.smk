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
