"""The start of every rule script: its log, its device, and the settings every job shares."""

from __future__ import annotations

import atexit
import logging
import os

from augcache.devices import assign_device
from augcache.images import set_max_image_pixels
from augcache.log import log_to

log = logging.getLogger("augcache.job")


def start_job(snakemake) -> None:
    """Send the job's output to its log, give it its device (one GPU when its rule declares
    ``gpu=1``, none otherwise) before TensorFlow is imported, and apply the shared settings."""
    log_to(snakemake.log[0])
    os.environ["KERAS_BACKEND"] = "tensorflow"
    assign_device(int(snakemake.resources.get("gpu", 0) or 0) > 0)
    set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])
    log.info("job %s started", snakemake.rule)
    atexit.register(log.info, "job %s ended", snakemake.rule)
