import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

from augcache.atomic import write_json
from augcache.dataset import class_names, read_index
from augcache.memory import memory_budget_bytes
from augcache.scoring import score_knn
from augcache.store.features import read_attrs
from augcache.stream import block_rows
from augcache.train import row_bytes

val = snakemake.input.val
rows = block_rows(row_bytes(read_attrs(val)), 256,
                  memory_budget_bytes(snakemake.config["train"]["memory_budget_mb"]) // 2)
k = len(snakemake.input.stores)
banks = {"unaugmented": [snakemake.input.noaug], f"{k} cached epochs": list(snakemake.input.stores)}
write_json(snakemake.output[0], score_knn(val, banks, class_names(read_index(snakemake.input.index)),
                                          int(snakemake.params.knn["k"]),
                                          float(snakemake.params.knn["temperature"]), rows))
