# One training rule per mode of the modes table (augcache/training/modes.py), named train_{mode}: its
# inputs, resources and environment follow from what the mode reads and whether it runs the base.
for MODE in MODES:

    rule:
        name:
            JOBS["train"].rules.format(mode=MODE)
        input:
            unpack(training_input(MODE)),
        output:
            run_outputs(MODE),
        log:
            JOBS["train"].log(stage=STAGE, mode=MODE, run=MODES[MODE].run_name),
        benchmark:
            JOBS["train"].benchmark(stage=STAGE, mode=MODE, run=MODES[MODE].run_name)
        conda:
            training_env(MODE)
        threads: 2
        resources:
            **training_resources(MODE),
        params:
            **train_params(MODE),
        script:
            "../../scripts/train_head.py"


use rule train_cached as train_sweep_point with:
    input:
        unpack(base_input),
        unpack(sweep_fold_input),
        stores=main_stores,
        manifests=main_manifests,
        val=VAL_STORE,
        index=INDEX,
    output:
        multiext(f"{SWEEP_RUN}/", **RUN_FILES),
    log:
        JOBS["train_sweep_point"].log(),
    benchmark:
        JOBS["train_sweep_point"].benchmark()
    params:
        head=point_head,
        k=config["cache"]["k"],


rule select_head:
    input:
        candidate_files("summary.json"),
        unpack(refit_input),
    output:
        selection=SELECTION,
        table=SWEEP_TABLE,
    log:
        JOBS["select_head"].log(),
    benchmark:
        JOBS["select_head"].benchmark()
    conda:
        ENV
    params:
        repeats=candidate_repeats(),
        swept=swept_settings(),
        select_on=config["head"]["select_on"],
    script:
        "../../scripts/select_head.py"


rule export_model:
    input:
        unpack(base_input),
        heads=exported_files(RUN_FILES["best_head"]),
        selection=SELECTION,
        index=INDEX,
        val=VAL_STORE,
    output:
        **export_outputs(),
    log:
        JOBS["export_model"].log(),
    benchmark:
        JOBS["export_model"].benchmark()
    conda:
        ENV
    params:
        base=SETTINGS.base_params(),
        pixel_size=SETTINGS.pixel_size,
        # how augcache predict --tta draws its views
        tta=SETTINGS.tta_params(),
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
        JOBS["score_test"].log(),
    benchmark:
        JOBS["score_test"].benchmark()
    conda:
        GPU_ENV
    resources:
        gpu=1,
    params:
        batch_size=config["cache"]["batch_size"],
        tta_views=SETTINGS.tta_views,
    script:
        "../../scripts/score_test.py"


rule predict:
    input:
        model=MODEL,
        classes=MODEL_CLASSES,
    output:
        PREDICTIONS,
    log:
        JOBS["predict"].log(),
    benchmark:
        JOBS["predict"].benchmark()
    conda:
        GPU_ENV
    resources:
        gpu=1,
    params:
        dir=config["predict"]["dir"],
        batch_size=config["cache"]["batch_size"],
    script:
        "../../scripts/predict.py"
