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
        STORED_FEATURES_ENV
    threads: 2
    resources:
        mem_mb=train_mem_mb,
        gpu=STORED_FEATURES_GPU,
    params:
        **train_params("cached"),
    script:
        "../../scripts/train_head.py"


use rule train_cached as train_sweep_point with:
    input:
        stores=main_stores,
        manifests=main_manifests,
        val=VAL_STORE,
        index=INDEX,
    output:
        multiext(f"{SWEEP_RUN}/", **RUN_FILES),
    log:
        f"{LOGS}/sweep/{{point}}/r{{r}}.log",
    params:
        head=point_head,
        k=config["cache"]["epochs"],


rule select_head:
    input:
        candidate_files("summary.json"),
    output:
        selection=SELECTION,
        table=SWEEP_TABLE,
    log:
        f"{LOGS}/select_head.log",
    conda:
        ENV
    params:
        candidates=selection_candidates(),
        swept=swept_settings(),
        select_on=config["head"]["select_on"],
    script:
        "../../scripts/select_head.py"


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
        STORED_FEATURES_ENV
    threads: 2
    resources:
        mem_mb=train_mem_mb,
        gpu=STORED_FEATURES_GPU,
    params:
        **train_params("noaug"),
    script:
        "../../scripts/train_head.py"


rule export_model:
    input:
        heads=candidate_files(RUN_FILES["best_head"], first_repeat_only=True),
        selection=SELECTION,
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


rule score_test:
    input:
        model=MODEL,
        classes=MODEL_CLASSES,
        index=INDEX,
    output:
        TEST_SCORES,
    log:
        f"{LOGS}/score_test.log",
    conda:
        GPU_ENV
    resources:
        gpu=1,
    params:
        batch_size=config["cache"]["batch_size"],
    script:
        "../../scripts/score_test.py"


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
