"""What made a file: hashes, versions, and the check that two records agree."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path


class ProvenanceError(ValueError):
    """A store was made by something other than what the reader expects."""


# Distributions whose versions shape stored numbers: in every reuse key and in every store's
# provenance (``<name>_version``, "none" where one is not installed).
LIBRARIES = ("tensorflow", "keras", "keras-hub", "jax", "jaxlib", "torch", "h5py", "numpy", "pandas", "pillow")
# What else a distribution may be installed as (TensorFlow's CPU-only build).
_ALIASES = {"tensorflow": ("tensorflow", "tensorflow-cpu")}
# On a GPU job, the CUDA libraries (NVIDIA's wheels, JAX's CUDA plugins) shape numbers too.
_GPU_LIBRARY_PREFIXES = ("nvidia-", "jax-cuda")


def sha256_file(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path, memo_dir=None) -> str:
    """sha256 of a file's bytes, hashed once per change of the file: remembered by its real path,
    size, modification and change times, inode and device, in this process and, with memo_dir,
    across processes (one small file per stat in memo_dir), so a large weights file or preset is
    not hashed again by every job."""
    stat = os.stat(path)
    stamp = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)
    if stamp in _HASHED:
        return _HASHED[stamp]
    memo = Path(memo_dir) / hashlib.sha256(repr(stamp).encode()).hexdigest() if memo_dir else None
    digest = None
    if memo is not None and memo.is_file():
        text = memo.read_text().strip()
        digest = text if len(text) == 64 else None
    if digest is None:
        digest = sha256_file(path)
        if memo is not None:
            try:
                memo.parent.mkdir(parents=True, exist_ok=True)
                tmp = memo.with_name(f".{memo.name}.{uuid.uuid4().hex}")
                tmp.write_text(digest)
                os.replace(tmp, memo)
            except OSError:  # a read-only place: the hash is still right, only not remembered
                pass
    _HASHED[stamp] = digest
    return digest


_HASHED: dict[tuple, str] = {}


def library_versions(gpu: bool = False) -> dict[str, str]:
    """{distribution: version} of this package and of LIBRARIES ("none" where one is not
    installed), read from their metadata without importing them; with gpu, also every CUDA
    library a GPU job computes with."""
    from importlib import metadata

    from augcache.core.version import __version__

    found = {"augcache": __version__}
    for name in LIBRARIES:
        found[name] = "none"
        for dist in _ALIASES.get(name, (name,)):
            try:
                found[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    if gpu:
        for dist in metadata.distributions():
            name = (dist.metadata["Name"] or "").lower()
            if name.startswith(_GPU_LIBRARY_PREFIXES):
                found[name] = dist.version
    return dict(sorted(found.items()))


def versions() -> dict[str, str]:
    """The provenance fields of library_versions: ``<name>_version`` for this package and each of
    LIBRARIES (``keras_hub_version`` for keras-hub; "none" where one is not installed)."""
    return {f"{name.replace('-', '_')}_version": version for name, version in library_versions().items()}


def canonical_json(value) -> str:
    """JSON text that is equal for equal values (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def check_fields(path, found: dict, expected: dict) -> None:
    """Raise ProvenanceError naming the file and the first field that differs or is missing."""
    for name, want in expected.items():
        if name not in found:
            raise ProvenanceError(f"{path}: provenance field '{name}' is missing")
        have = found[name]
        if have != want:
            raise ProvenanceError(
                f"{path}: provenance field '{name}' is {_short(have)}, expected {_short(want)}"
            )


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
