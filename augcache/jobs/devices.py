"""Which accelerator a job uses: one GPU per job that declares ``gpu=1``, none for the others.

On a workstation Snakemake hands out no GPU ids, so a job that declares ``resources: gpu=1``
takes a free device slot itself: it locks ``<lock dir>/gpu_<id>.lock`` with ``flock`` (the kernel
drops the lock when the process ends, ``kill -9`` included) and sets ``CUDA_VISIBLE_DEVICES`` to
that one device before TensorFlow is imported. Under SLURM the scheduler's ``CUDA_VISIBLE_DEVICES``
is kept. A job that declares no GPU gets ``CUDA_VISIBLE_DEVICES=""``, so it never initialises CUDA
nor takes memory from the extraction running beside it.

The machine's GPUs come from ``nvidia-smi -L``; ``AUGCACHE_GPUS`` (comma-separated ids, empty for
none) overrides the detection, for tests and unusual setups.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from augcache.core.backend import VISIBLE
from augcache.core.memory import cgroup_room

log = logging.getLogger(__name__)

GPUS_VARIABLE = "AUGCACHE_GPUS"
# One lock file per device, shared by every workflow run on the machine (AUGCACHE_GPU_LOCKS
# moves it, e.g. for tests).
LOCKS_VARIABLE = "AUGCACHE_GPU_LOCKS"
DEFAULT_LOCK_DIR = Path("/tmp/augcache-gpu-slots")


def lock_dir() -> Path:
    return Path(os.environ.get(LOCKS_VARIABLE) or DEFAULT_LOCK_DIR)


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str = ""

    def describe(self) -> str:
        return f"gpu {self.id}" + (f": {self.name}" if self.name else "")


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """GPUs of ``nvidia-smi -L`` output ("GPU 0: NVIDIA H200 (UUID: GPU-...)")."""
    gpus = []
    for line in text.splitlines():
        match = re.match(r"GPU (\d+): (.*?)(?: \(UUID: [^)]*\))?\s*$", line.strip())
        if match:
            gpus.append(Gpu(match.group(1), match.group(2)))
    return gpus


# What CUDA_VISIBLE_DEVICES accepts for one device: its number, or its UUID (GPU-… or MIG-…).
DEVICE_ID = re.compile(r"\d+|(GPU|MIG)-[0-9A-Za-z-]+")


def gpus_from_variable(value: str) -> list[Gpu]:
    """The GPUs AUGCACHE_GPUS names: comma-separated device numbers or UUIDs, empty for none;
    ValueError naming the variable for anything else."""
    ids = [i.strip() for i in value.split(",") if i.strip()]
    bad = [i for i in ids if not DEVICE_ID.fullmatch(i)]
    if bad:
        raise ValueError(
            f"{GPUS_VARIABLE}={value!r}: {', '.join(repr(b) for b in bad)} is not a device; give the GPUs' "
            "numbers as nvidia-smi -L lists them (e.g. 0,1) or their UUIDs, or an empty value for none"
        )
    return [Gpu(i) for i in ids]


def machine_gpus() -> list[Gpu]:
    """The GPUs of this machine: AUGCACHE_GPUS if set, else those ``nvidia-smi -L`` lists."""
    if GPUS_VARIABLE in os.environ:
        return gpus_from_variable(os.environ[GPUS_VARIABLE])
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("nvidia-smi -L failed (%s): running without GPUs", err)
        return []
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


class DeviceSlot:
    """A GPU held by this process for its lifetime (the lock file stays open)."""

    def __init__(self, gpu: Gpu, handle):
        self.gpu, self._handle = gpu, handle


def _try_lock(path: Path):
    handle = open(path, "a+")
    try:
        os.chmod(path, 0o666)  # other users' jobs share the devices
    except OSError:
        pass
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def claim_gpu(gpus: list[Gpu], locks: Path | None = None, poll: float = 0.5) -> DeviceSlot:
    """Lock the first free GPU of `gpus`, waiting while all are held by other jobs."""
    locks = Path(locks or lock_dir())
    if not locks.is_dir():
        locks.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(locks, 0o1777)
        except OSError:
            pass
    waited = 0.0
    while True:
        for gpu in gpus:
            handle = _try_lock(locks / f"gpu_{gpu.id}.lock")
            if handle is not None:
                if waited:
                    log.info("waited %.0f s for a free GPU", waited)
                return DeviceSlot(gpu, handle)
        if waited == 0.0:
            log.info("all %d GPUs are held by other jobs; waiting for one", len(gpus))
        time.sleep(poll)
        waited += poll


_held: DeviceSlot | None = None


def assign_device(wants_gpu: bool, locks: Path | None = None) -> str:
    """Set CUDA_VISIBLE_DEVICES for this job (before TensorFlow is imported) and return it.

    wants_gpu: the job declares ``gpu=1``. Under SLURM (SLURM_JOB_ID set) the scheduler's choice
    is kept; on a workstation a GPU job takes a free device slot (see :func:`claim_gpu`), and a
    machine without GPUs runs it on the CPU.
    """
    global _held
    if not wants_gpu:
        os.environ[VISIBLE] = ""
    elif "SLURM_JOB_ID" in os.environ and VISIBLE in os.environ:
        pass
    else:
        gpus = machine_gpus()
        if gpus:
            _held = claim_gpu(gpus, locks)
            os.environ[VISIBLE] = _held.gpu.id
            if _held.gpu.name:
                os.environ["AUGCACHE_GPU_NAME"] = _held.gpu.name
        else:
            os.environ[VISIBLE] = ""
    value = os.environ[VISIBLE]
    log.info("%s=%s (%s)", VISIBLE, value or '""', "declares gpu=1" if wants_gpu else "declares no GPU")
    return value


def machine_gpu_slots() -> int:
    """How many GPU jobs may run at once on this machine: one per GPU, and one on a machine
    without GPUs (so that TensorFlow jobs do not compete for the same cores)."""
    return max(1, len(machine_gpus()))


def machine_memory_mb(share: float = 0.9) -> int:
    """MiB jobs may take together: `share` of the machine's memory (or of this process's cgroup
    limit, when lower)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    room = cgroup_room()
    if room is not None:
        total = min(total, room)
    return max(1, int(total * share / 2**20))
