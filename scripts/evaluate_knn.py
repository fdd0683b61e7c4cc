import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.core.atomic import write_json
from augcache.data.dataset import class_names, read_index
from augcache.evaluation.scoring import block_rows_of, score_knn
from augcache.training.folds import knn_queries

val = snakemake.input.val
rows = block_rows_of(val, snakemake.config["train"]["memory_budget_mb"])
k = len(snakemake.input.stores)
banks = {"unaugmented": [snakemake.input.noaug], f"{k} cached epochs": list(snakemake.input.stores)}
# with eval.folds, each fold of repeat 0 is scored against the other folds' rows of each bank
queries = (knn_queries(snakemake.input.noaug, snakemake.input.folds, int(snakemake.params.folds))
           if "folds" in snakemake.input.keys() else None)
write_json(snakemake.output[0], score_knn(val, banks, class_names(read_index(snakemake.input.index)),
                                          int(snakemake.params.knn["k"]),
                                          float(snakemake.params.knn["temperature"]), rows, queries))
