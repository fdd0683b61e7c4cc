import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.job import start_job

start_job(snakemake)

from pathlib import Path

from augcache.atomic import write_text_atomic

write_text_atomic(snakemake.output[0], Path(snakemake.input[0]).read_text())
