import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.core.atomic import write_csv
from augcache.training.full_model import predict_folder

table = predict_folder(snakemake.input.model, snakemake.input.classes, snakemake.params.dir,
                       snakemake.params.batch_size)
write_csv(snakemake.output[0], table)
print(table["label"].value_counts().to_string())
