"""What made a file: hashes, versions, and the check that two records agree."""

from __future__ import annotations

import hashlib
import json


class ProvenanceError(ValueError):
    """A store was made by something other than what the reader expects."""


def sha256_file(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of the libraries that shape stored numbers (TensorFlow's "none" where a process
    computes with another Keras backend and TensorFlow is not installed)."""
    from importlib import metadata

    import h5py
    import keras
    import numpy

    import augcache

    tensorflow = "none"
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            tensorflow = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    return {
        "augcache_version": augcache.__version__,
        "tensorflow_version": tensorflow,
        "keras_version": keras.__version__,
        "numpy_version": numpy.__version__,
        "h5py_version": h5py.__version__,
    }


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
