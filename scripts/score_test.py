import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import start_job

start_job(snakemake)

from augcache.core.atomic import write_json
from augcache.data.dataset import read_index
from augcache.training.full_model import score_split

# the test images, scored once by the exported (chosen) model only
scores = score_split(snakemake.input.model, snakemake.input.classes, read_index(snakemake.input.index), "test",
                     snakemake.params.batch_size, snakemake.params.tta_views)
write_json(snakemake.output[0], scores)
print(f"test accuracy {scores['accuracy']:.4f} (macro {scores['macro_accuracy']:.4f}) on {scores['n']} images")
if "tta" in scores:
    print(f"with {scores['tta']['views']} test-time views: {scores['tta']['accuracy']:.4f}")
