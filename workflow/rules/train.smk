rule train_cached:
    input:
        stores=cached_stores,
        manifests=cached_manifests,
        val=VAL_STORE,
        index=INDEX,
    output:
        head="results/train/cached/k{k}_r{r}/head.keras",
        metrics="results/train/cached/k{k}_r{r}/metrics.csv",
        summary="results/train/cached/k{k}_r{r}/summary.json",
    log:
        f"{LOGS}/train/cached/k{{k}}_r{{r}}.log",
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=train_mem_mb,
    params:
        mode="cached",
        seed=run_seed,
        head=config["head"],
        base=base_params(),
        augment=config["augment"],
        cache=cache_params(),
    script:
        "../../scripts/train_head.py"


rule train_replay:
    input:
        unpack(pixel_input),
        manifests=cached_manifests,
        val=VAL_STORE,
        base=base_input,
    output:
        head="results/train/replay/k{k}_r{r}/head.keras",
        metrics="results/train/replay/k{k}_r{r}/metrics.csv",
        summary="results/train/replay/k{k}_r{r}/summary.json",
    log:
        f"{LOGS}/train/replay/k{{k}}_r{{r}}.log",
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        mode="replay",
        seed=run_seed,
        head=config["head"],
        base=base_params(),
        augment=config["augment"],
        cache=cache_params(),
        pixel_size=PIXEL_SIZE,
    script:
        "../../scripts/train_head.py"


rule train_onthefly:
    input:
        unpack(pixel_input),
        val=VAL_STORE,
        base=base_input,
    output:
        head="results/train/onthefly/r{r}/head.keras",
        metrics="results/train/onthefly/r{r}/metrics.csv",
        summary="results/train/onthefly/r{r}/summary.json",
    log:
        f"{LOGS}/train/onthefly/r{{r}}.log",
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        mode="onthefly",
        seed=run_seed,
        head=config["head"],
        base=base_params(),
        augment=config["augment"],
        cache=cache_params(),
        pixel_size=PIXEL_SIZE,
    script:
        "../../scripts/train_head.py"


rule train_noaug:
    input:
        noaug=NOAUG_STORE,
        val=VAL_STORE,
        index=INDEX,
    output:
        head="results/train/noaug/r{r}/head.keras",
        metrics="results/train/noaug/r{r}/metrics.csv",
        summary="results/train/noaug/r{r}/summary.json",
    log:
        f"{LOGS}/train/noaug/r{{r}}.log",
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=train_mem_mb,
    params:
        mode="noaug",
        seed=run_seed,
        head=config["head"],
        base=base_params(),
        cache=cache_params(),
    script:
        "../../scripts/train_head.py"


rule export_model:
    input:
        head=f"results/train/cached/k{config['cache']['epochs']}_r0/head.keras",
        index=INDEX,
        base=base_input,
    output:
        model=MODEL,
        classes=MODEL_CLASSES,
        saved_model=directory(SAVED_MODEL),
    log:
        f"{LOGS}/export_model.log",
    conda:
        ENV
    params:
        base=base_params(),
        pixel_size=PIXEL_SIZE,
    script:
        "../../scripts/export_model.py"


rule predict:
    input:
        model=MODEL,
        classes=MODEL_CLASSES,
    output:
        PREDICTIONS,
    log:
        f"{LOGS}/predict.log",
    conda:
        GPU_ENV
    resources:
        gpu=1,
    params:
        dir=config["predict"]["dir"],
        batch_size=config["cache"]["batch_size"],
    script:
        "../../scripts/predict.py"
