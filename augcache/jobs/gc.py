"""Removing the reuse entries no output uses any more (``augcache gc``), and moving those an
earlier version kept in ``results/cache`` (see :mod:`augcache.jobs.reuse`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from augcache.core import paths
from augcache.core.provenance import sha256_file
from augcache.jobs.reuse import ENTRIES, ENTRY, USES, entry_lock

log = logging.getLogger(__name__)

# An unfinished entry older than this, whose job cannot be asked whether it still runs (another
# host's), is taken to be left by a killed job.
UNFINISHED_GRACE_SECONDS = 24 * 3600


def _in_use(entry: Path) -> bool:
    """An output links to one of the entry's files, or a recorded copy is still in place: the same
    file (path, inode, size) with the entry file's bytes."""
    files = [p for p in entry.rglob("*") if p.is_file() and p.name != ENTRY and p.parent.name != USES]
    if any(p.stat().st_nlink > 1 for p in files):
        return True
    records = sorted((entry / USES).glob("*.json")) if (entry / USES).is_dir() else []
    if not records or not (entry / ENTRY).is_file():
        return False
    hashes = json.loads((entry / ENTRY).read_text())["files"]
    for record in records:
        try:
            use = json.loads(record.read_text())
            stat = os.stat(use["path"])
            same = (stat.st_ino, stat.st_dev, stat.st_size) == (use["inode"], use["device"], use["size"])
            if same and sha256_file(use["path"]) == hashes.get(use["file"]):
                return True
        except (OSError, ValueError, KeyError):
            continue
    return False


def _unfinished_is_running(entry: Path) -> bool:
    """An unfinished entry (``.<key>.<host>.<pid>.<random>.tmp``) whose job may still be writing
    it: its process runs on this host, or it is another host's (or older naming) and younger than
    UNFINISHED_GRACE_SECONDS."""
    parts = entry.name.split(".")
    if len(parts) == 6 and parts[2] == socket.gethostname() and parts[3].isdigit():
        try:
            os.kill(int(parts[3]), 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    try:
        age = time.time() - entry.stat().st_mtime
    except OSError:
        return False
    return age < UNFINISHED_GRACE_SECONDS


def _remove(entry: Path, removed: list, dry_run: bool) -> int:
    """Remove an entry (nothing with dry_run), add it to removed; the bytes it held."""
    size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
    removed.append(entry)
    if not dry_run:
        shutil.rmtree(entry, ignore_errors=True)
    return size


def collect_garbage(root=ENTRIES, dry_run: bool = False) -> tuple[list[Path], int]:
    """(entries removed, bytes freed): the entries no output uses any more (no output links to
    them and no recorded copy is in place), and unfinished entries left by killed jobs. Entries in
    use and unfinished entries of running jobs are kept."""
    root = Path(root)
    removed, freed = [], 0
    if not root.is_dir():
        return removed, freed
    for entry in sorted(p for p in root.glob("*/*") if p.is_dir() and not p.parent.name.startswith(".")):
        if entry.name.startswith("."):
            if not _unfinished_is_running(entry):
                freed += _remove(entry, removed, dry_run)
            continue
        if _in_use(entry):
            continue
        if dry_run:
            freed += _remove(entry, removed, dry_run)
            continue
        with entry_lock(entry, blocking=False) as held:
            # held by a job putting the entry in place: it will be in use
            if held and not _in_use(entry):
                freed += _remove(entry, removed, dry_run)
                entry.with_name(f".{entry.name}.lock").unlink(missing_ok=True)
    return removed, freed


def _holds_entries(folder: Path) -> bool:
    """folder holds reuse entries and nothing else: remembered hashes, and <kind>/<key>/ folders
    with their locks (.<key>.lock)."""
    children = list(folder.iterdir())
    for child in children:
        if child.name == Path(paths.HASH_MEMO).name:
            continue
        if not child.is_dir() or not all(e.is_dir() or _is_lock(e) for e in child.iterdir()):
            return False
    return bool(children)


def _is_lock(path: Path) -> bool:
    """An entry's lock file (see augcache.jobs.reuse.entry_lock)."""
    return path.is_file() and path.name.startswith(".") and path.name.endswith(".lock")


def migrate(results="results") -> Path | None:
    """Move the entries of an earlier version's ``results/cache`` to ``results/reuse`` (see
    paths.FORMER_REUSE); the folder they went to, or None when there was nothing to move. A
    ``results/cache`` that holds anything but entries is left as it is, with a warning."""
    results = Path(results)
    former = results / Path(paths.FORMER_REUSE).name
    target = results / Path(paths.REUSE).name
    if not former.is_dir():
        return None
    if not _holds_entries(former):
        log.warning("%s holds files that are not reuse entries: left as it is (entries are kept in %s)", former, target)
        return None
    if not target.exists():
        former.rename(target)
    else:  # both: move what the new folder lacks, drop duplicates of entries it has
        for kind in former.iterdir():
            for entry in kind.iterdir():
                place = target / kind.name / entry.name
                if place.exists():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    place.parent.mkdir(parents=True, exist_ok=True)
                    entry.rename(place)
        shutil.rmtree(former, ignore_errors=True)
    log.warning("moved the reuse entries of %s to %s", former, target)
    return target
