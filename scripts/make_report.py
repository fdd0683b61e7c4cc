import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

import json
from pathlib import Path

import pandas as pd

from augcache.data.dataset import read_index
from augcache.report.page import write_report
from augcache.store.features import read_attrs

inputs = snakemake.input
variants = {name.removeprefix("variant_"): list(inputs[name]) for name in inputs.keys() if name.startswith("variant_")}
table = write_report(
    # the run folders as the inputs name them (below results/variants/{name}/ in a variant)
    [str(Path(p).parent) for p in inputs.summaries],
    read_attrs(snakemake.input.store),
    snakemake.params.config,
    snakemake.output.html,
    out_table=snakemake.output.table,
    out_curves=snakemake.output.curves,
    out_sweep=snakemake.output.sweep,
    skipped=read_index(snakemake.input.skipped),
    selection=json.loads(Path(snakemake.input.selection).read_text()),
    sweep_table=pd.read_csv(snakemake.input.sweep),
    test_scores=json.loads(Path(inputs.test).read_text()) if "test" in inputs.keys() else None,
    variants=variants,
    base_info=json.loads(Path(inputs.base).read_text()),
    # the folder the benchmarks lie in: this one, or a variant's (results/features/train.h5 below it)
    benchmarks_root=Path(inputs.store).parents[2],
    extraction_groups=snakemake.params.extraction_groups,
    val_scores=json.loads(Path(inputs.val_scores).read_text()),
    evaluation=json.loads(Path(inputs.evaluation).read_text()) if "evaluation" in inputs.keys() else None,
    knn=json.loads(Path(inputs.knn).read_text()) if "knn" in inputs.keys() else None,
    out_confusion=snakemake.output.confusion,
)
print(table.to_string())
