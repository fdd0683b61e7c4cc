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
