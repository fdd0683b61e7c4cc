"""Atomic outputs: write under a temporary name beside the target, rename when complete."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path) -> None:
    """Flush a file's (or a folder's) data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Replacement:
    """A temporary path beside `path` (``.{name}.{pid}.tmp{suffix}``) that becomes `path` on
    :meth:`commit`: the data are flushed to disk before the rename and the folder after it, so a
    node failure leaves either the old file or the whole new one. :meth:`discard` removes it.

    suffix: the ending a writer insists on (``.keras``, ``.weights.h5``).
    """

    def __init__(self, path, suffix: str = ""):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp{suffix}")

    def commit(self) -> None:
        if self.tmp.is_dir():
            for part in sorted(self.tmp.rglob("*")):
                if part.is_file():
                    fsync_path(part)
        fsync_path(self.tmp)
        os.replace(self.tmp, self.path)
        fsync_path(self.path.parent)

    def discard(self) -> None:
        """Remove the temporary file (or folder); nothing to do after a commit."""
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside `path`; it becomes `path` when the block succeeds and is
    removed when it fails, so a killed or failed writer never leaves a file that looks complete
    (see :class:`Replacement`)."""
    replacement = Replacement(path, suffix)
    try:
        yield replacement.tmp
        replacement.commit()
    finally:
        replacement.discard()


def write_text_atomic(path, text: str) -> None:
    """Write a text file (UTF-8) atomically: see :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def csv_text(table, header: bool = True) -> str:
    """The one CSV form of every table augcache writes (manifests, index, metrics, report):
    no index column, "\\n" line ends, floats in their shortest round-trip form."""
    return table.to_csv(index=False, lineterminator="\n", header=header)


def write_csv(path, table) -> None:
    """Write a pandas table atomically as :func:`csv_text`."""
    write_text_atomic(path, csv_text(table))


def write_json(path, value) -> None:
    """Write a JSON record atomically, indented, with a final newline."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def _renumber_shared_objects(value, numbers: dict):
    """Replace Keras' ``shared_object_id`` values (memory addresses) by 1, 2, … in order of
    first appearance; equal ids stay equal, so shared objects are still shared on loading."""
    if isinstance(value, dict):
        return {key: (numbers.setdefault(item, len(numbers) + 1) if key == "shared_object_id"
                      else _renumber_shared_objects(item, numbers))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_renumber_shared_objects(item, numbers) for item in value]
    return value


def normalise_keras_archive(path) -> None:
    """Make a saved ``.keras`` file's bytes depend on the model only: Keras writes the save time
    into the archive's entries and into metadata.json, and memory addresses into config.json, so
    two saves of equal weights differ."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            archive.writestr(fixed, data)
