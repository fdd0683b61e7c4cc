"""Outputs keyed by what made them, so that nothing is computed twice.

A heavy job (the pixel store, the base check, every extraction, every training run, the export)
has a key: sha256 over what decides its outputs, namely its kind (the rule script), its params
and wildcards, what each input is, the code that computes (the rule script's bytes and those of
every module of this package), and the versions of this package and of the libraries that
shape numbers. What an input is: for an HDF5 store its provenance attributes (its content hash
included: ``pixels_sha256``, ``features_sha256``), for a folder the path, size and bytes of its
files, for any other file the sha256 of its bytes. So an input rewritten with the same bytes (an
index rebuilt after an image was touched, a pixel store decoded again) keeps the keys of
everything made from it.

A finished job's outputs are hard-linked into ``results/cache/<kind>/<key>/`` (``0``, ``1``, … in
the order of the job's outputs), beside ``entry.json``: the fields the key was made of and the
sha256 of every file, written last, so an entry without it is not used. A job whose entry exists
links its outputs back into place instead of computing (its log says ``reused <key>``), after
checking every file against its sha256: an entry whose bytes fail is removed and the job
computes. Hard links cost no space; the cache shares the outputs' disk blocks. ``augcache gc``
removes the entries no output links to any more.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

from augcache.provenance import canonical_json, sha256_file

log = logging.getLogger(__name__)

CACHE = Path("results/cache")
ENTRY = "entry.json"
# Attributes of a store that say how it was made, not what it holds: left out of its identity.
VOLATILE_ATTRS = ("seconds", "device", "complete")
# Distributions whose versions shape stored numbers.
LIBRARIES = ("tensorflow", "keras", "numpy", "h5py", "pillow")


def library_versions() -> dict[str, str]:
    """Versions of this package and of the libraries that shape numbers (read from their
    metadata, without importing them)."""
    from augcache import __version__

    found = {"augcache": __version__}
    for name in LIBRARIES:
        for dist in (name, f"{name}-cpu"):
            try:
                found[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def identity(path) -> str:
    """What an input is, as text: the provenance of an HDF5 store (volatile attributes left
    out), the listing and bytes of a folder, or the sha256 of a file."""
    path = Path(path)
    if path.is_dir():
        from augcache.dataset import listing_fingerprint

        return "folder " + listing_fingerprint(path, content=True)
    import h5py

    if path.suffix == ".h5" and h5py.is_hdf5(path):
        from augcache.store.writer import attr_value

        with h5py.File(path, "r") as handle:
            attrs = {k: attr_value(v) for k, v in handle.attrs.items() if k not in VOLATILE_ATTRS}
        return "store " + hashlib.sha256(canonical_json(attrs).encode()).hexdigest()
    return "file " + sha256_file(path)


@functools.cache
def code_sha256(kind: str) -> str:
    """sha256 of the code a job of this kind runs: every module of the package, and its rule script
    (scripts/<kind>.py beside the package, where there is one)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    script = package.parent / "scripts" / f"{kind}.py"
    for path in sorted(package.rglob("*.py")) + ([script] if script.is_file() else []):
        digest.update(str(path.relative_to(package.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def positional_inputs(paths) -> dict[str, list]:
    """A job's input files by position (how a rule script's inputs enter its key), so that jobs of
    different rules with the same inputs in the same order share keys."""
    return {str(i): [path] for i, path in enumerate(paths)}


def job_key(kind: str, params: dict, wildcards: dict, inputs: dict[str, list]) -> tuple[str, dict]:
    """(key, the fields it was made of) of a job: see the module's description. inputs: name (or
    position) -> paths."""
    fields = {
        "kind": kind,
        "params": params,
        # the repeat's folder names where a store lies, not what it holds (the manifest says that)
        "wildcards": {k: v for k, v in wildcards.items() if k != "repeat_dir"},
        "inputs": {name: [identity(p) for p in paths] for name, paths in inputs.items()},
        "code": code_sha256(kind),
        "versions": library_versions(),
    }
    text = canonical_json(fields)
    return hashlib.sha256(text.encode()).hexdigest(), fields


def _files(path: Path) -> list[Path]:
    """An output's files: itself, or every file below an output folder (relative paths)."""
    if path.is_dir():
        return sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
    return [Path()]


def _link(source: Path, target: Path) -> None:
    """target becomes another name of source (a copy where the filesystem cannot link them)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def entry_dir(kind: str, key: str, root=CACHE) -> Path:
    return Path(root) / kind / key


def reuse(kind: str, key: str, outputs: list, root=CACHE) -> bool:
    """Put the outputs of entry `key` in place (hard links, their times set to now) and return
    True; False when there is no complete entry, or when its files fail their sha256 (the entry
    is removed)."""
    entry = entry_dir(kind, key, root)
    record = entry / ENTRY
    if not record.is_file():
        return False
    files = json.loads(record.read_text())["files"]
    for stored, want in files.items():
        part = entry / stored
        if not part.is_file() or sha256_file(part) != want:
            log.warning("cached entry %s: %s fails its sha256 (damaged since it was stored); removing the "
                        "entry and computing again", key, stored)
            shutil.rmtree(entry, ignore_errors=True)
            return False
    for i, output in enumerate(map(Path, outputs)):
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        for stored in sorted(f for f in files if f == str(i) or f.startswith(f"{i}/")):
            target = output / Path(stored).relative_to(str(i)) if "/" in stored else output
            _link(entry / stored, target)
            os.utime(target)
        if output.is_dir():
            os.utime(output)
    log.info("reused %s", key)
    return True


def store(kind: str, key: str, fields: dict, outputs: list, root=CACHE) -> None:
    """Link a finished job's outputs into entry `key` (nothing when it exists already)."""
    entry = entry_dir(kind, key, root)
    if (entry / ENTRY).is_file():
        return
    tmp = entry.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = {}
    for i, output in enumerate(map(Path, outputs)):
        for relative in _files(output):
            name = f"{i}/{relative}" if output.is_dir() else str(i)
            _link(output / relative if output.is_dir() else output, tmp / name)
            files[name] = sha256_file(tmp / name)
    (tmp / ENTRY).write_text(json.dumps({"key": key, "fields": fields, "outputs": [str(o) for o in outputs],
                                         "files": files}, indent=1, default=str))
    try:
        os.replace(tmp, entry)
    except OSError:  # another job stored the same key meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


def collect_garbage(root=CACHE, dry_run: bool = False) -> tuple[list[Path], int]:
    """(entries removed, bytes freed): the entries none of whose files is linked from anywhere
    else (no output of any run uses them), and unfinished entries left by killed jobs. An entry
    one of whose files an output still links to is kept."""
    root = Path(root)
    removed, freed = [], 0
    if not root.is_dir():
        return removed, freed
    for entry in sorted(p for p in root.glob("*/*") if p.is_dir()):
        unfinished = entry.name.startswith(".")
        files = [p for p in entry.rglob("*") if p.is_file() and p.name != ENTRY]
        if unfinished or all(p.stat().st_nlink == 1 for p in files):
            removed.append(entry)
            freed += sum(p.stat().st_size for p in files)
            if not dry_run:
                shutil.rmtree(entry)
    return removed, freed
