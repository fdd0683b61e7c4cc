import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from pathlib import Path

from augcache.core.atomic import write_json
from augcache.report.tensorboard import write_logs

record = write_logs([str(Path(p).parent) for p in snakemake.input.metrics], snakemake.output.logs)
write_json(snakemake.output.record, record)
