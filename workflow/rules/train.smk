rule train_cached:
    input:
        stores=cached_stores,
        manifests=cached_manifests,
        val=VAL_STORE,
        index=INDEX,
    output:
        run_outputs("cached"),
    log:
        run_log("cached"),
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=train_mem_mb,
    params:
        **train_params("cached"),
    script:
        "../../scripts/train_head.py"


rule train_replay:
    input:
        unpack(pixel_input),
        manifests=cached_manifests,
        val=VAL_STORE,
        base=base_input,
    output:
        run_outputs("replay"),
    log:
        run_log("replay"),
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        **train_params("replay"),
    script:
        "../../scripts/train_head.py"


rule train_onthefly:
    input:
        unpack(pixel_input),
        val=VAL_STORE,
        base=base_input,
    output:
        run_outputs("onthefly"),
    log:
        run_log("onthefly"),
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        **train_params("onthefly"),
    script:
        "../../scripts/train_head.py"


rule train_noaug:
    input:
        noaug=NOAUG_STORE,
        val=VAL_STORE,
        index=INDEX,
    output:
        run_outputs("noaug"),
    log:
        run_log("noaug"),
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=train_mem_mb,
    params:
        **train_params("noaug"),
    script:
        "../../scripts/train_head.py"


rule export_model:
    input:
        head=f"{MODES['cached'].run_dir(config['cache']['epochs'], 0)}/{RUN_FILES['head']}",
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
