"""Disk space for a store: refuse one that cannot fit before writing it, allocate its largest
size up front (so the disk cannot fill up under HDF5, which cannot close a file after a failed
write), and give back what the finished file did not use."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


class DiskFullError(OSError):
    """A store did not fit on its disk; nothing of it was left behind."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(err: BaseException) -> bool:
    """Whether an error (h5py's included, which may only say it in the message) is ENOSPC."""
    return getattr(err, "errno", None) == errno.ENOSPC or "errno = 28" in str(err) \
        or "No space left on device" in str(err)


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def disk_full(path, what: str) -> DiskFullError:
    """The error for a store at `path` that did not fit: what happened, the free space, the remedy."""
    path = Path(path)
    free = shutil.disk_usage(path.parent).free
    return DiskFullError(
        f"{path}: disk full: {what}; {mib(free)} free on {path.parent}. Free space (or "
        f"move results/ to a larger disk) and rerun"
    )


def check_room(path, needed: int) -> None:
    """Refuse, before anything is written, a file of up to `needed` bytes that cannot fit."""
    if needed > shutil.disk_usage(Path(path).parent).free:
        raise disk_full(path, f"the store needs up to {mib(needed)}, nothing was written")


def reserve(path, needed: int, store=None) -> None:
    """Allocate `needed` bytes to the file at `path` now; DiskFullError (naming `store`, the file
    being written, when it differs from its temporary `path`) when they do not fit. Filesystems
    that cannot allocate ahead are left to grow the file as it is written."""
    fd = os.open(path, os.O_RDWR)
    try:
        _allocate(fd, needed)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full(store or path, f"the store needs up to {mib(needed)}, nothing was written") from err
        log.debug("%s: space not reserved (%s)", path, err)
    finally:
        os.close(fd)


def _allocate(fd: int, size: int) -> None:
    """Allocate `size` bytes of disk to a file with Linux fallocate(2), which fails with
    EOPNOTSUPP where the filesystem cannot (glibc's posix_fallocate would instead write every
    block, slowly, on such filesystems)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    if libc.fallocate(ctypes.c_int(fd), ctypes.c_int(0), ctypes.c_int64(0), ctypes.c_int64(size)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _stored_eof(path) -> int | None:
    """The end-of-file address in an HDF5 superblock at offset 0, or None if not understood."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if head[:8] != b"\x89HDF\r\n\x1a\n":
        return None
    version = head[8]
    if version in (2, 3):
        size, at = head[9], 12 + 2 * head[9]
    elif version in (0, 1):
        size, at = head[13], 24 + 4 * version + 2 * head[13]
    else:
        return None
    return int.from_bytes(head[at:at + size], "little")


def trim(path) -> None:
    """Give back the reserved space the closed HDF5 file did not use."""
    eof = _stored_eof(path)
    if eof is not None and 0 < eof < os.path.getsize(path):
        os.truncate(path, eof)
