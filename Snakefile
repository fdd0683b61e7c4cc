from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/report.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/variants.smk"


# Light jobs run on the submitting host, not as cluster jobs.
localrules:
    all,
    cache,
    make_demo_data,
    fetch_weights,
    check_conv_base,
    describe_conv_base,
    index_dataset,
    write_manifest,
    write_view_manifest,
    merge_epochs,
    select_head,
    export_model,
    make_report,


rule all:
    input:
        final_outputs(),


rule cache:
    input:
        TRAIN_STORE,
        expand(EPOCH_STORE, repeat_dir="", epoch=SETTINGS.epochs()),
        VAL_STORE,
