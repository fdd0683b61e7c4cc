# One extraction job per (repeat, epoch, shard); with cache.shards_per_epoch: 1 the job is the
# whole epoch (extract_epoch, the same rule writing the epoch store itself).
rule extract_shard:
    input:
        unpack(pixel_input),
        manifest=MANIFEST,
        base=base_input,
    output:
        temp(SHARD_STORE),
    log:
        f"{LOGS}/{{repeat_dir}}extract/epoch_{{epoch}}/shard_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/{{repeat_dir}}extract/epoch_{{epoch}}/shard_{{shard}}.tsv"
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


if config["cache"]["shards_per_epoch"] == 1:

    use rule extract_shard as extract_epoch with:
        output:
            EPOCH_STORE,
        log:
            f"{LOGS}/{{repeat_dir}}extract/epoch_{{epoch}}.log",
        benchmark:
            f"{BENCHMARKS}/{{repeat_dir}}extract/epoch_{{epoch}}.tsv"


rule extract_val:
    input:
        unpack(pixel_input),
        base=base_input,
    output:
        VAL_STORE,
    log:
        f"{LOGS}/extract/val.log",
    benchmark:
        f"{BENCHMARKS}/extract/val.tsv"
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        **SETTINGS.extract_params(split="val"),
    script:
        "../../scripts/extract_unaugmented.py"


use rule extract_val as extract_noaug with:
    output:
        NOAUG_STORE,
    log:
        f"{LOGS}/extract/train_noaug.log",
    benchmark:
        f"{BENCHMARKS}/extract/train_noaug.tsv"
    params:
        split="train",
