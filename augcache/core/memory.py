"""How much memory a process may use: the machine's, capped by its cgroup limits (a SLURM job's
memory request, a container's limit), and the budget a setting gives."""

from __future__ import annotations

import os
from pathlib import Path


def cgroup_room(proc_cgroup="/proc/self/cgroup", sys_root="/sys/fs/cgroup") -> int | None:
    """Bytes left under the tightest cgroup memory limit of this process and its parent groups
    (cgroup v2, or the v1 memory controller); None without a limit."""
    sys_root = Path(sys_root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    places = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            places.append((sys_root, path, "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):
            places.append((sys_root / "memory", path, "memory.limit_in_bytes",
                           "memory.usage_in_bytes"))
    room = None
    for root, path, limit_file, usage_file in places:
        folder = root / path.lstrip("/")
        for level in (folder, *folder.parents):
            try:
                limit = (level / limit_file).read_text().strip()
                if limit != "max" and int(limit) < 1 << 60:
                    left = int(limit) - int((level / usage_file).read_text())
                    room = left if room is None else min(room, left)
            except (OSError, ValueError):
                pass
            if level == root:
                break
    return room


def available_memory_bytes() -> int:
    """Memory this process can still use: MemAvailable, capped by its cgroup limits (a SLURM job's
    memory request, a container's limit)."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    room = cgroup_room()
    if room is not None:
        available = min(available, room)
    return max(0, available)


def memory_budget_bytes(setting) -> int:
    """``train.memory_budget_mb`` in bytes: a positive number of MiB, or "auto" (half the available
    memory)."""
    if setting == "auto":
        return available_memory_bytes() // 2
    if isinstance(setting, bool) or not isinstance(setting, (int, float)) or setting <= 0:
        raise ValueError(f"train.memory_budget_mb: expected 'auto' or a positive number, got {setting!r}")
    return max(1, int(setting * 2**20))
