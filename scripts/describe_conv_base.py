import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

import json
from pathlib import Path

from augcache.core.atomic import write_json
from augcache.jobs.plan import describe, planned_stores, summary

# the checked base's record, and what the run's stores take on disk
run, stores = planned_stores(snakemake.params.storage, snakemake.input.index, snakemake.input.base,
                             snakemake.output[0])
info = json.loads(Path(snakemake.input.base).read_text())
info["storage"] = summary(run, stores, snakemake.params.storage)
print(f"stores of this run:\n{describe(stores)}")
write_json(snakemake.output[0], info)
