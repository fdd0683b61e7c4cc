# One extraction job per (repeat, epoch, shard); with cache.shards_per_epoch: 1 the job is the
# whole epoch (extract_epoch, the same rule writing the epoch store itself).
rule extract_shard:
    input:
        unpack(pixel_input),
        unpack(base_input),
        manifest=MANIFEST,
    output:
        store=temp(SHARD_STORE),
        record=temp(SHARD_RECORD),
    log:
        JOBS["extract_shard"].log(),
    benchmark:
        JOBS["extract_shard"].benchmark()
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        **SETTINGS.extract_params(
            augment=config["augment"], shards=config["cache"]["shards_per_epoch"]
        ),
    script:
        "../../scripts/extract_epoch.py"


if max(map(len, EPOCH_GROUPS)) == 1 and config["cache"]["shards_per_epoch"] == 1:

    use rule extract_shard as extract_epoch with:
        output:
            EPOCH_STORE,
        log:
            JOBS["extract_epoch"].log(),
        benchmark:
            JOBS["extract_epoch"].benchmark()


# cache.epochs_per_job above 1: one job per group of consecutive epochs, each into its own store,
# the same bytes as one job per epoch (a job of one epoch is extract_epoch above)
for EPOCHS in EPOCH_GROUPS if max(map(len, EPOCH_GROUPS)) > 1 else []:

    rule:
        name:
            JOBS["extract_epochs"].rules.format(first=EPOCHS[0], last=EPOCHS[-1])
        input:
            unpack(pixel_input),
            unpack(base_input),
            manifests=[
                MANIFEST.format(repeat_dir="{repeat_dir}", epoch=e) for e in EPOCHS
            ],
        output:
            [EPOCH_STORE.format(repeat_dir="{repeat_dir}", epoch=e) for e in EPOCHS],
        log:
            group_filed(EPOCHS)[0],
        benchmark:
            group_filed(EPOCHS)[1]
        conda:
            GPU_ENV
        threads: extraction_threads()
        resources:
            **grouped_extraction_resources(EPOCHS),
        params:
            **SETTINGS.extract_params(augment=config["augment"], shards=1),
            epochs=EPOCHS,
        script:
            "../../scripts/extract_epochs.py"


rule extract_val:
    input:
        unpack(pixel_input),
        unpack(base_input),
    output:
        kinds.VAL.path,
    log:
        JOBS["extract_val"].log(),
    benchmark:
        JOBS["extract_val"].benchmark()
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        **SETTINGS.extract_params(split=kinds.VAL.split),
    script:
        "../../scripts/extract_unaugmented.py"


use rule extract_val as extract_noaug with:
    output:
        kinds.NOAUG.path,
    log:
        JOBS["extract_noaug"].log(),
    benchmark:
        JOBS["extract_noaug"].benchmark()
    params:
        **SETTINGS.pooled_params(),
        split=kinds.NOAUG.split,
