"""Outputs keyed by what made them, so that nothing is computed twice.

A heavy job (the pixel store, the base check, every extraction, every training run, the export)
has a key: sha256 over what decides its outputs' bytes, namely its kind (the rule script), its
params and wildcards, what each input is, the code that computes (the rule script's bytes and
those of the package's modules and data files it runs, see :func:`augcache.jobs.job_code.code_files`),
the versions of this package and of the libraries that
shape numbers (:data:`augcache.core.provenance.LIBRARIES`, and the CUDA libraries and the GPU on a GPU
job), the Keras backend and, for jobs that compute with it, the thread count. What an input is:
for an augcache store, which carries the hash of its own content (``pixels_sha256``,
``features_sha256``), its provenance attributes; for any other file (a weights file, a model file,
an index, a manifest) the sha256 of its bytes; for a folder (a keras-hub preset, the demo's
images) its path and the names and bytes of its files (a job that reads a folder records the
paths of what it read, as the index does). A file's sha256 is remembered by its path, size, times and inode (see
:func:`augcache.core.provenance.file_sha256`), so an unchanged 1 GB preset is hashed once, not by
every job.

A finished job's outputs are kept in ``results/reuse/<kind>/<key>/``, each under its own file
name (a folder output: its files below its name), beside ``entry.json``: the fields the key was
made of, the sha256 of every file and what computing them cost (seconds, peak memory), written
last, so an entry without it is not used. A job whose entry exists puts its outputs in place
instead of computing (its log says ``reused <key>``), after checking every file against its
sha256 (an entry whose bytes fail is removed and the job computes) and every output's name
against the record (an entry that names other outputs is not used).

An output and the entry it comes from share their bytes (a hard link) while no other output uses
them; an output placed from an entry that another output already uses gets a copy, so that no two
outputs ever share a file: Snakemake judges each output by its own modification time, and a time
set on one output never moves another's. A copy (or a whole entry where the filesystem cannot
link) is recorded in the entry's ``uses/``; ``augcache gc`` keeps an entry while any output links
to it or a recorded copy is still in place, and leaves unfinished entries of running jobs alone.

Earlier versions kept the entries in ``results/cache/``; :func:`augcache.jobs.gc.migrate` moves them (a rename:
the outputs' links stay).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

from augcache.core import backend, paths
from augcache.core.provenance import canonical_json, file_sha256, library_versions, sha256_file
from augcache.jobs.former import FORMER_CODE
from augcache.jobs.job_code import code_files

log = logging.getLogger(__name__)

ENTRIES = Path(paths.REUSE)
ENTRY = "entry.json"
# placements of an entry's files that are copies, one record each (see _record_use)
USES = "uses"
# Attributes of a store that say how it was made, not what it holds: left out of its identity.
VOLATILE_ATTRS = ("seconds", "device", "complete")
# Attributes by which a store carries the hash of its own content.
CONTENT_ATTRS = ("features_sha256", "pixels_sha256")
# Kinds whose bytes do not depend on their thread count (decoding images): the others compute
# with the backend, whose reductions may be split differently over another number of threads.
THREAD_FREE = ("index_dataset",)
# What Snakemake was told to run again in this invocation (--forcerun/-R, --forceall/-F,
# --force/-f): {"rules": [names], "files": [outputs]}, passed on by the main process to its jobs.
FORCED_ENV = "AUGCACHE_FORCED"
def hash_memo(root=ENTRIES) -> Path:
    """Where files' sha256 are remembered across jobs (see augcache.core.provenance.file_sha256):
    paths.HASH_MEMO for the workflow's own reuse folder."""
    return Path(root) / Path(paths.HASH_MEMO).name


def _is_store(path: Path):
    """The root attributes of an augcache store that carries its content hash, else None."""
    if path.suffix != ".h5":
        return None
    import h5py

    if not h5py.is_hdf5(path):
        return None
    from augcache.store.writer import attr_value

    with h5py.File(path, "r") as handle:
        if not any(name in handle.attrs for name in CONTENT_ATTRS):
            return None
        return {k: attr_value(v) for k, v in handle.attrs.items() if k not in VOLATILE_ATTRS}


def identity(path, root=ENTRIES) -> str:
    """What an input is, as text: the provenance of an augcache store (its content hash
    included, volatile attributes left out), a folder's path and its files' names and bytes, or
    the sha256 of any other file's bytes."""
    path = Path(path)
    memo = hash_memo(root)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file, memo)}\n".encode())
        return f"folder {path} " + digest.hexdigest()
    attrs = _is_store(path)
    if attrs is not None:
        return "store " + hashlib.sha256(canonical_json(attrs).encode()).hexdigest()
    return "file " + file_sha256(path, memo)


@functools.cache
def code_sha256(kind: str, package_dir: Path | None = None) -> str:
    """sha256 of the code a job of this kind runs: its rule script (scripts/<kind>.py beside the
    package) and the package's modules and data files it runs (:func:`augcache.jobs.job_code.code_files`);
    for a kind without a script, every module of the package. So an edit of the report leaves the entries of
    extraction alone, and an edit of the augmentation recomputes the epochs."""
    package_dir = Path(package_dir or Path(__file__).resolve().parents[1])
    script = package_dir.parent / "scripts" / f"{kind}.py"
    files = code_files(script, package_dir) if script.is_file() else sorted(package_dir.rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(package_dir.parent) if path.is_relative_to(package_dir.parent) else path.name
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def gpu_description() -> str:
    """The GPUs a GPU job may compute on and their driver ("" where nvidia-smi is absent)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def positional_inputs(paths) -> dict[str, list]:
    """A job's input files by position (how a rule script's inputs enter its key), so that jobs of
    different rules with the same inputs in the same order share keys."""
    return {str(i): [path] for i, path in enumerate(paths)}


def job_key(kind: str, params: dict, wildcards: dict, inputs: dict[str, list], threads: int | None = None,
            gpu: bool = False, root=ENTRIES) -> tuple[str, dict]:
    """(key, the fields it was made of) of a job: see the module's description. inputs: name (or
    position) -> paths; threads: the job's threads (left out for THREAD_FREE kinds); gpu: the job
    computes on a GPU."""
    fields = {
        "kind": kind,
        "params": params,
        # the repeat's folder names where a store lies, not what it holds (the manifest says that)
        "wildcards": {k: v for k, v in wildcards.items() if k != "repeat_dir"},
        "inputs": {name: [identity(p, root) for p in paths] for name, paths in inputs.items()},
        "code": code_sha256(kind),
        "versions": library_versions(gpu=gpu),
        "backend": backend.name(),
    }
    if kind not in THREAD_FREE:
        fields["threads"] = threads
    if gpu:
        fields["gpu"] = gpu_description()
    text = canonical_json(fields)
    return hashlib.sha256(text.encode()).hexdigest(), fields


def pass_on_forced(workflow) -> None:
    """Tell the jobs this process starts what Snakemake was told to run again (called when the run
    starts): the rules and files of --forcerun/-R, the targets with --force/-f, or everything with
    --forceall/-F, so that they compute instead of reusing. Outputs Snakemake reruns because they are
    incomplete (--rerun-incomplete) are not among them: a job killed after it kept its outputs
    reuses them."""
    settings = workflow.dag_settings
    if settings.forceall:
        forced = {"all": True}
    else:
        named = set(settings.forcerun or ()) | (set(settings.targets or ()) if settings.forcetargets else set())
        rules = {name for name in named if workflow.is_rule(name)}
        forced = {"rules": sorted(rules), "files": sorted(os.path.normpath(f) for f in named - rules)}
    os.environ[FORCED_ENV] = json.dumps(forced)


def why_compute(rule: str, outputs, reuse_enabled: bool = True) -> str | None:
    """Why a job must compute even when an entry of its key exists: Snakemake was told to run it
    again (--forcerun, --forceall, --force), or reuse is false; None when it may reuse."""
    if not reuse_enabled:
        return "reuse is false"
    forced = json.loads(os.environ.get(FORCED_ENV) or "{}")
    files = {os.path.normpath(str(output)) for output in outputs}
    if forced.get("all") or rule in forced.get("rules", ()) or not files.isdisjoint(forced.get("files", ())):
        return "Snakemake was told to run it again"
    return None


def _files(path: Path) -> list[Path]:
    """An output's files: itself, or every file below an output folder (relative paths)."""
    if path.is_dir():
        return sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
    return [Path()]


def _hard_link(source: Path, target: Path) -> bool:
    """target becomes another name of source; False where the filesystem cannot link them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return True
    except OSError:
        return False


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    shutil.copy2(source, tmp)
    os.replace(tmp, target)


def _record_use(entry: Path, stored: str, placed: Path) -> None:
    """Record that `placed` is a copy of the entry's file `stored`, so that gc keeps the entry while
    that copy is in place."""
    stat = placed.stat()
    record = {"path": str(placed.resolve()), "file": stored, "inode": stat.st_ino, "device": stat.st_dev,
              "size": stat.st_size}
    name = hashlib.sha256(record["path"].encode()).hexdigest()[:32]
    (entry / USES).mkdir(exist_ok=True)
    tmp = entry / USES / f".{name}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, entry / USES / f"{name}.json")


def entry_dir(kind: str, key: str, root=ENTRIES) -> Path:
    return Path(root) / kind / key


@contextlib.contextmanager
def entry_lock(entry: Path, blocking: bool = True):
    """Hold an entry's lock (a file beside it, ``.<key>.lock``): placing its files (reuse) and
    removing it (gc) take it, so gc never removes an entry while a job puts it in place, and two
    jobs placing one entry do so in turn (the second sees the first's link and copies). Yields
    False, without the lock, when blocking is False and another process holds it."""
    import fcntl

    lock = entry.with_name(f".{entry.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError as err:  # a filesystem without locks (Lustre mounted without flock)
            log.warning("%s: cannot lock (%s): placing and gc are not kept apart on this filesystem", lock, err)
            yield True
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rekey_former(kind: str, key: str, fields: dict, root=ENTRIES) -> bool:
    """Where no entry of `key` exists: the entry that the version before this one kept for the same
    job (every field the same but the code, which :data:`augcache.jobs.former.FORMER_CODE` lists as
    computing the bytes this version's does) takes `key`, once, with a note in the log. True when
    one did."""
    former = FORMER_CODE.get(kind)
    if former is None or former == fields.get("code") or read_entry(kind, key, root) is not None:
        return False
    former_key = hashlib.sha256(canonical_json(dict(fields, code=former)).encode()).hexdigest()
    old, new = entry_dir(kind, former_key, root), entry_dir(kind, key, root)
    if read_entry(kind, former_key, root) is None:
        return False
    with entry_lock(old), entry_lock(new):
        record = read_entry(kind, former_key, root)
        if record is None or new.exists():
            return False
        os.replace(old, new)
        record.update(key=key, fields=fields, former_key=former_key)
        tmp = new / f".{ENTRY}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, new / ENTRY)
    log.warning("reuse entry %s, kept by the version before this one (its package before it moved into "
                "folders), re-keyed once as %s: its code computes the same bytes", former_key, key)
    return True


def read_entry(kind: str, key: str, root=ENTRIES) -> dict | None:
    """The record of a complete entry, or None."""
    record = entry_dir(kind, key, root) / ENTRY
    return json.loads(record.read_text()) if record.is_file() else None


def _stored_names(output: Path, files: dict) -> list[str]:
    """The entry's files that make up output: its name, or the files below it (a folder)."""
    name = output.name
    return sorted(f for f in files if f == name or f.startswith(f"{name}/"))


def reuse(kind: str, key: str, outputs: list, root=ENTRIES) -> dict | None:
    """Put the outputs of entry `key` in place and return its record; None when there is no
    complete entry, when it does not name exactly these outputs, or when its files fail their
    sha256 (the entry is removed). Each output gets the entry's file (its time set to now) or, when
    another output already uses that file, a copy of it: no two outputs ever share a file."""
    entry = entry_dir(kind, key, root)
    if read_entry(kind, key, root) is None:
        return None
    with entry_lock(entry):
        return _place(kind, key, outputs, root)


def _place(kind: str, key: str, outputs: list, root) -> dict | None:
    """reuse, with the entry's lock held."""
    entry = entry_dir(kind, key, root)
    record = read_entry(kind, key, root)
    if record is None:
        return None
    files = record["files"]
    outputs = [Path(o) for o in outputs]
    named = {f.split("/")[0] for f in files}
    if named != {o.name for o in outputs} or len(named) != len(outputs):
        log.warning("reuse entry %s holds %s, not the outputs %s: computing", key, sorted(named),
                    sorted(o.name for o in outputs))
        return None
    for stored, want in files.items():
        part = entry / stored
        if not part.is_file() or sha256_file(part) != want:
            log.warning("reuse entry %s: %s fails its sha256 (damaged since it was stored); removing the "
                        "entry and computing again", key, stored)
            shutil.rmtree(entry, ignore_errors=True)
            return None
    for output in outputs:
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)
        elif output.exists() or output.is_symlink():
            output.unlink()
        for stored in _stored_names(output, files):
            source = entry / stored
            target = output / Path(stored).relative_to(output.name) if "/" in stored else output
            if source.stat().st_nlink > 1 or not _hard_link(source, target):
                _copy(source, target)
                _record_use(entry, stored, target)
            os.utime(target)
        if output.is_dir():
            os.utime(output)
    log.info("reused %s", key)
    return record


def store(kind: str, key: str, fields: dict, outputs: list, cost: dict | None = None, root=ENTRIES,
          replace: bool = False) -> None:
    """Keep a finished job's outputs as entry `key` (nothing when it exists already, unless
    replace: a job told to compute replaces the entry), each under its name; cost: what computing
    them took (seconds, peak memory), for the report of a later run that reuses them."""
    entry = entry_dir(kind, key, root)
    if (entry / ENTRY).is_file() and not replace:
        return
    outputs = [Path(o) for o in outputs]
    if len({o.name for o in outputs}) != len(outputs):
        raise ValueError(f"outputs of {kind} share a file name, so an entry cannot tell them apart: {outputs}")
    # unique across the hosts of a cluster that share this folder
    tmp = entry.with_name(f".{key}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    files, copies = {}, []
    for output in outputs:
        for relative in _files(output):
            name = f"{output.name}/{relative.as_posix()}" if output.is_dir() else output.name
            source = output / relative if output.is_dir() else output
            if not _hard_link(source, tmp / name):
                _copy(source, tmp / name)
                copies.append((name, source))
            files[name] = sha256_file(tmp / name)
    (tmp / ENTRY).write_text(json.dumps({"key": key, "fields": fields, "outputs": [str(o) for o in outputs],
                                         "files": files, "cost": cost}, indent=1, default=str))
    with entry_lock(entry):
        if replace and entry.exists():
            # the old entry leaves under an unfinished name (gc removes what a crash leaves of it)
            old = entry.with_name(f".{key}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old")
            with contextlib.suppress(OSError):
                entry.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, entry)
        except OSError:  # another job stored the same key meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return
    for name, source in copies:
        _record_use(entry, name, source)
