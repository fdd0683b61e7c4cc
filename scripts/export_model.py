import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import finish_job, job_base, start_job

# outputs made before from the same key are reused (augcache.jobs.reuse)
start_job(snakemake, reusable=True)

import json
from pathlib import Path

from augcache.data.dataset import class_names, read_index
from augcache.training.full_model import export_full_model

# the chosen head (a sweep point, or the cached run of K = cache.k) at its best epoch
selection = json.loads(Path(snakemake.input.selection).read_text())
if selection["head"] not in snakemake.input.heads:
    raise ValueError(f"{snakemake.input.selection}: chosen head {selection['head']} is not a candidate")
export_full_model(
    job_base(snakemake),
    selection["head"],
    class_names(read_index(snakemake.input.index)),
    snakemake.output.model,
    snakemake.output.classes,
    pixel_size=snakemake.params.pixel_size,
    # TensorFlow's SavedModel, under the TensorFlow backend only (see export_outputs)
    out_saved_model=snakemake.output.get("saved_model"),
    selection=selection,
    tta=snakemake.params.tta,
)

from augcache.core.atomic import write_json
from augcache.evaluation.scoring import head_class_report

# the exported head on the validation features: per-class recall and confusion matrix
write_json(snakemake.output.val_scores, head_class_report(selection["head"], snakemake.input.val,
                                                          class_names(read_index(snakemake.input.index))))
finish_job(snakemake)
