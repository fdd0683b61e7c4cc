import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

import json
from pathlib import Path

from augcache.atomic import write_json
from augcache.dataset import class_names, read_index
from augcache.memory import memory_budget_bytes
from augcache.scoring import score_heads
from augcache.store.features import read_attrs
from augcache.stream import block_rows
from augcache.train import row_bytes

val = snakemake.input.val
# blocks of validation rows sized to half the memory budget (as training streams them)
rows = block_rows(row_bytes(read_attrs(val)), 256,
                  memory_budget_bytes(snakemake.config["train"]["memory_budget_mb"]) // 2)
selection = json.loads(Path(snakemake.input.selection).read_text())
write_json(snakemake.output[0], score_heads(snakemake.params.runs, val, list(snakemake.input.views),
                                            class_names(read_index(snakemake.input.index)),
                                            selection["head"], rows))
