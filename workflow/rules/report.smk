rule make_report:
    input:
        unpack(test_report_input),
        unpack(evaluation_input),
        unpack(variant_summaries),
        val_scores=VAL_SCORES,
        summaries=run_files("summary.json"),
        benchmarks=cost_files,
        metrics=run_files("metrics.csv"),
        store=TRAIN_STORE,
        base=BASE_INFO,
        skipped=SKIPPED,
        selection=SELECTION,
        sweep=SWEEP_TABLE,
    output:
        html=report(REPORT, caption="../report/report.rst", category="Report"),
        table=report(
            "results/report/modes.csv",
            caption="../report/modes.rst",
            category="Report",
        ),
        curves=report(
            "results/report/curves.png",
            caption="../report/curves.rst",
            category="Plots",
        ),
        sweep=report(
            "results/report/sweep.png", caption="../report/sweep.rst", category="Plots"
        ),
        confusion=report(
            "results/report/confusion.png",
            caption="../report/confusion.rst",
            category="Plots",
        ),
    log:
        JOBS["make_report"].log(),
    benchmark:
        JOBS["make_report"].benchmark()
    conda:
        ENV
    params:
        config=config,
        # the epochs of each extraction job, whose benchmarks the cost account reads
        extraction_groups=EPOCH_GROUPS,
    script:
        "../../scripts/make_report.py"


# tracking.mlflow: every head run in MLflow, under a parent run with the report, the model and the
# manifests (a run logged before is not logged again)
rule track_runs:
    input:
        unpack(evaluation_input),
        unpack(evaluation_folds),
        summaries=run_files("summary.json") + variant_files("summary.json"),
        metrics=run_files("metrics.csv") + variant_files("metrics.csv"),
        report=REPORT,
        model=MODEL,
        manifests=tracked_manifests(),
    output:
        TRACKED,
    log:
        JOBS["track_runs"].log(),
    benchmark:
        JOBS["track_runs"].benchmark()
    conda:
        ENV
    params:
        mlflow=config["tracking"]["mlflow"],
        configs=tracked_configs(),
    script:
        "../../scripts/track_runs.py"


# tracking.tensorboard: every run's curves (the report's, the variants' and the sweep points') as
# the logs Keras' TensorBoard callback writes, one logdir for the workflow's runs (written anew
# from their metrics)
rule tensorboard_logs:
    input:
        metrics=evaluated_files("metrics.csv") + variant_files("metrics.csv"),
    output:
        record=TENSORBOARD,
        logs=directory(TENSORBOARD_DIR),
    log:
        JOBS["tensorboard_logs"].log(),
    benchmark:
        JOBS["tensorboard_logs"].benchmark()
    conda:
        ENV
    script:
        "../../scripts/tensorboard_logs.py"
