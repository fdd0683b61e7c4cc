if config["cache"]["shards_per_epoch"] == 1:

    rule extract_epoch:
        input:
            unpack(pixel_input),
            manifest=MANIFEST,
            base=base_input,
        output:
            EPOCH_STORE,
        log:
            f"{LOGS}/{{rep}}extract/epoch_{{epoch}}.log",
        conda:
            GPU_ENV
        threads: 2
        resources:
            gpu=1,
        params:
            base=base_params(),
            augment=config["augment"],
            cache=cache_params(),
            pixel_size=PIXEL_SIZE,
        script:
            "../../scripts/extract_epoch.py"

else:

    rule extract_shard:
        input:
            unpack(pixel_input),
            manifest=MANIFEST,
            base=base_input,
        output:
            temp(SHARD_STORE),
        log:
            f"{LOGS}/{{rep}}extract/epoch_{{epoch}}/shard_{{shard}}.log",
        conda:
            GPU_ENV
        threads: 2
        resources:
            gpu=1,
        params:
            base=base_params(),
            augment=config["augment"],
            cache=cache_params(),
            pixel_size=PIXEL_SIZE,
            shards=config["cache"]["shards_per_epoch"],
        script:
            "../../scripts/extract_epoch.py"


rule extract_val:
    input:
        unpack(pixel_input),
        base=base_input,
    output:
        VAL_STORE,
    log:
        f"{LOGS}/extract/val.log",
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        split="val",
        base=base_params(),
        cache=cache_params(),
        pixel_size=PIXEL_SIZE,
    script:
        "../../scripts/extract_unaugmented.py"


rule extract_noaug:
    input:
        unpack(pixel_input),
        base=base_input,
    output:
        NOAUG_STORE,
    log:
        f"{LOGS}/extract/train_noaug.log",
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        split="train",
        base=base_params(),
        cache=cache_params(),
        pixel_size=PIXEL_SIZE,
    script:
        "../../scripts/extract_unaugmented.py"
