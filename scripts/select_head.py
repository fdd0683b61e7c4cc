import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from pathlib import Path

from augcache.core.atomic import write_csv, write_json
from augcache.training.sweep import select_head

# each candidate's run folders, as the inputs name them (below results/variants/{name}/ in a variant)
summaries = iter(snakemake.input)
candidates = {point: [str(Path(next(summaries)).parent) for _ in range(repeats)]
              for point, repeats in snakemake.params.repeats.items()}
# with eval.folds, each candidate's head refit on every labelled image, in the candidates' order
refits = (dict(zip(candidates, (str(Path(p).parent) for p in snakemake.input.refit), strict=True))
          if "refit" in snakemake.input.keys() else None)
choice, table = select_head(candidates, snakemake.params.select_on, snakemake.params.swept, refits)
write_csv(snakemake.output.table, table)
write_json(snakemake.output.selection, choice)
print(table.to_string())
print(f"chosen: {choice['point']}, epoch {choice['epoch'] + 1}: {choice['why']}")
