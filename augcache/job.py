"""The start and the end of every rule script: its log, its device, the settings every job
shares, and for the heavy jobs the reuse of outputs computed before (see :mod:`augcache.reuse`)."""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path

from augcache.devices import assign_device
from augcache.images import set_max_image_pixels
from augcache.log import log_to

log = logging.getLogger("augcache.job")

# the key of this job's outputs, when its script can reuse them: (kind, key, fields)
_reusable: tuple | None = None


def script_kind() -> str:
    """The rule script this process runs (Snakemake runs a copy named ``tmp….<script>.py``)."""
    return Path(sys.argv[0]).name.removesuffix(".py").split(".")[-1]


def start_job(snakemake, reusable: bool = False) -> None:
    """Send the job's output to its log, give it its device (one GPU when its rule declares
    ``gpu=1``, none otherwise) before TensorFlow is imported, and apply the shared settings.

    reusable: the job's outputs are a function of its key (see :mod:`augcache.reuse`): when an
    entry of that key exists, its outputs are put in place and the process ends here; otherwise
    :func:`finish_job` stores them once they are made."""
    global _reusable
    log_to(snakemake.log[0])
    os.environ["KERAS_BACKEND"] = "tensorflow"
    log.info("job %s started", snakemake.rule)
    atexit.register(log.info, "job %s ended", snakemake.rule)
    if reusable:
        from augcache.reuse import job_key, positional_inputs, reuse

        kind = script_kind()
        key, fields = job_key(kind, dict(snakemake.params.items()), dict(snakemake.wildcards.items()),
                              positional_inputs(snakemake.input))
        if reuse(kind, key, list(snakemake.output)):
            sys.exit(0)
        log.info("computing %s (no cached outputs of this key)", key)
        _reusable = (kind, key, fields)
    assign_device(int(snakemake.resources.get("gpu", 0) or 0) > 0)
    set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])


def finish_job(snakemake) -> None:
    """Keep the finished outputs of a reusable job under their key (see :func:`start_job`)."""
    if _reusable is not None:
        from augcache.reuse import store

        kind, key, fields = _reusable
        store(kind, key, fields, list(snakemake.output))
        log.info("outputs kept as %s", key)
