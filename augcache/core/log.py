"""Sending a job's output (Python logging, TensorFlow's native messages) to its log file."""

from __future__ import annotations

import logging
import os
import sys


def log_to(path) -> None:
    """Route stdout, stderr (file descriptors 1 and 2 too) and logging to `path`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    handle = open(path, "w", buffering=1)
    for fd in (1, 2):
        os.dup2(handle.fileno(), fd)
    sys.stdout = sys.stderr = handle
    logging.basicConfig(
        stream=handle,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if "SLURM_JOB_ID" in os.environ:
        gpus = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                        if k == "CUDA_VISIBLE_DEVICES" or (k.startswith("SLURM") and "GPU" in k))
        logging.getLogger("augcache.jobs.job").info(
            "SLURM job %s on %s: %s", os.environ["SLURM_JOB_ID"], os.environ.get("SLURMD_NODENAME", "?"),
            gpus or "no GPU",
        )
