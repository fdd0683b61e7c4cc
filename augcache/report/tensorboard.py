"""Every head run's curves as TensorBoard logs (``tracking.tensorboard``).

Each run's ``metrics.csv`` becomes the logs Keras' ``TensorBoard`` callback writes of a fit:
``epoch_loss`` and ``epoch_accuracy`` per head epoch, in a ``train`` and a ``validation`` folder,
below ``results/tracking/tensorboard/`` at the run's own path (``train/cached/k5_r0``,
``sweep/<point>/r0``, …), so that ``tensorboard --logdir results/tracking/tensorboard`` shows every
run of the workflow side by side. They are written from the curves the runs recorded, after the
runs (a reused run is not trained again for them), and written anew each time: a run no longer in
the workflow leaves no log behind. Writing needs TensorFlow's summary writer (TensorFlow is the
default backend's package; viewing them needs the ``tensorboard`` package); where it is missing,
a warning names the key, and the job still ends.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd

from augcache.core import backend
from augcache.core.paths import below_results

log = logging.getLogger(__name__)

# metrics.csv column: (the folder Keras' callback writes it to, its tag there)
TAGS = {"loss": ("train", "epoch_loss"), "accuracy": ("train", "epoch_accuracy"),
        "val_loss": ("validation", "epoch_loss"), "val_accuracy": ("validation", "epoch_accuracy")}


def log_path(run_dir) -> Path:
    """A run's folder below the logs: its path below results/ (a variant's with its variants/<name>/
    results/ prefix)."""
    return Path(below_results(run_dir))


def write_logs(run_dirs, root) -> dict:
    """The logs of every run of run_dirs below root (replacing what was there); the record of what
    was written, or why nothing was."""
    root = Path(root)
    try:
        tf = backend.tensorflow()
    except ImportError as err:
        log.warning("tracking.tensorboard: TensorBoard logs need TensorFlow's summary writer, which is not "
                    "installed (pip install 'augcache[tensorflow]'); none were written")
        return {"logdir": str(root), "runs": [], "error": f"{type(err).__name__}: {err}"}
    # what tf.summary.scalar writes (which needs the tensorboard package; writing this way does not)
    scalar = tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()
    building = root.with_name(root.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    written = []
    for run_dir in run_dirs:
        curves = pd.read_csv(Path(run_dir, "metrics.csv"))
        folder = building / log_path(run_dir)
        for split in sorted({split for column, (split, _) in TAGS.items() if column in curves}):
            writer = tf.summary.create_file_writer(str(folder / split))
            with writer.as_default():
                for column, (column_split, tag) in TAGS.items():
                    if column_split == split and column in curves:
                        for epoch, value in zip(curves["epoch"], curves[column]):
                            tf.summary.write(tag, tf.constant(float(value), tf.float32), step=int(epoch),
                                             metadata=scalar)
            writer.close()
        written.append(str(log_path(run_dir)))
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    log.info("tracking.tensorboard: the curves of %d runs below %s (tensorboard --logdir %s)", len(written), root, root)
    return {"logdir": str(root), "runs": written}
