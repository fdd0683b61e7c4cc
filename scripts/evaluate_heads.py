import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

import json
from pathlib import Path

from augcache.core.atomic import write_json
from augcache.data.dataset import class_names, read_index
from augcache.evaluation.scoring import block_rows_of, score_heads
from augcache.training.folds import FoldRows

val = snakemake.input.val
rows = block_rows_of(val, snakemake.config["train"]["memory_budget_mb"])
selection = json.loads(Path(snakemake.input.selection).read_text())
# each run's folder as the inputs name it (below results/variants/{name}/ in a variant)
runs = [str(Path(head).parent) for head in snakemake.input.heads]
# with eval.folds, a fold's run is scored on its fold's rows of the unaugmented store
fold_rows = FoldRows(snakemake.input.fold_val, list(snakemake.input.folds)) if "folds" in snakemake.input.keys() else None
write_json(snakemake.output[0], score_heads(runs, val, list(snakemake.input.views),
                                            class_names(read_index(snakemake.input.index)),
                                            selection["head"], rows, fold_rows))
