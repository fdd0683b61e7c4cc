import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.data.dataset import read_index
from augcache.data.folds import assign_folds, labelled_rows, write_folds

folds = int(snakemake.params.folds)
write_folds(assign_folds(labelled_rows(read_index(snakemake.input[0]), folds), folds, int(snakemake.params.seed)),
            snakemake.output[0])
