"""Writing an HDF5 store atomically, and reading one safely: the parts every store kind shares.

A store is written under a temporary name with its largest size reserved on disk; the attribute
``complete`` is set last, and the file only gets its final name after it is closed, so a killed
writer leaves at most a ``.tmp`` file that no reader opens.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from augcache.core.atomic import Replacement
from augcache.core.provenance import ProvenanceError
from augcache.store.space import DiskFullError, check_room, disk_full, is_disk_full, reserve, trim

STRING_DTYPE = h5py.string_dtype("utf-8")
log = logging.getLogger(__name__)
RECOMPUTE = "delete it and rerun the workflow to compute it again"


class StoreError(ProvenanceError):
    """A store is unreadable, damaged or unfinished, or not a feature store at all."""


def _damage(path, err: OSError) -> StoreError:
    truncated = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(err))
    if truncated:
        have, want = truncated.groups()
        return StoreError(f"{path}: file is truncated ({have} of {want} bytes); {RECOMPUTE}")
    if "filter returned failure" in str(err) or "checksum" in str(err):
        return StoreError(f"{path}: damaged: stored bytes fail their checksum ({err}); {RECOMPUTE}")
    return StoreError(f"{path}: not a readable HDF5 file or damaged ({err}); {RECOMPUTE}")


@contextmanager
def reading(path):
    """Turn an HDF5 error raised while reading `path` into a StoreError naming it."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as err:
        raise _damage(path, err) from err


def chunk_rows(row_bytes: int, n: int, target_bytes: int = 1 << 20) -> int:
    """Rows per HDF5 chunk of a feature store of n rows of row_bytes each: about target_bytes, at
    most 4096 rows and at most n (1 for an empty store)."""
    return min(n, int(max(1, min(4096, target_bytes // max(1, row_bytes))))) or 1


class StoreWriter:
    """Write an HDF5 store under a temporary name; on success mark it complete and rename it.

    Use as a context manager; an exception inside the block removes the temporary file, as does
    the next writer of the same path for one left by a killed process. The file's largest size is
    reserved on disk before any row is written, and trimmed after closing; a store that does not
    fit raises DiskFullError at once. Subclasses create their datasets (``_create``), set their own
    attributes (``_describe``), bound the file's size (``_size_bound``) and write rows
    (``_write_rows``).
    """

    def __init__(self, path, n: int, attrs: dict):
        self.path = Path(path)
        self.n = n
        self.attrs = dict(attrs)
        self.written = 0
        self.attrs_at_close: dict = {}
        self.closing = False
        self.file = None
        self.replacement = None

    def _remove_stale(self, own) -> None:
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            if stale != own:
                log.info("removing %s, left by a writer that did not finish", stale)
                stale.unlink(missing_ok=True)

    def _size_bound(self) -> int:
        raise NotImplementedError

    def _create(self) -> None:
        raise NotImplementedError

    def _describe(self) -> None:
        """Attributes the writer itself sets (format, shapes), after the given ones."""

    def _write_rows(self, start: int, stop: int, *columns) -> None:
        raise NotImplementedError

    @property
    def tmp(self):
        return self.replacement.tmp

    def _full_while_writing(self) -> DiskFullError:
        return disk_full(self.path, f"after {self.written} of {self.n} rows, the partial file was removed")

    def _discard(self) -> None:
        """Close (ignoring the errors of a broken file) and remove the temporary file."""
        try:
            # closing again after a failed close crashes HDF5
            if self.file is not None and self.file.id.valid and not self.closing:
                self.file.close()
        except Exception as err:  # the file is being thrown away
            log.debug("closing %s: %s", self.tmp, err)
        self.replacement.discard()

    def __enter__(self):
        self.replacement = Replacement(self.path)
        self._remove_stale(self.tmp)
        needed = self._size_bound()
        check_room(self.path, needed)
        try:
            self.file = h5py.File(self.tmp, "w")
            self._create()
            for key, value in self.attrs.items():
                self.file.attrs[key] = value
            self._describe()
            self.file.flush()
            reserve(self.tmp, needed, self.path)
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, *columns) -> None:
        """Append the next rows: one array or list per dataset, of equal lengths."""
        start, stop = self.written, self.written + len(columns[0])
        if stop > self.n:
            raise ValueError(f"{self.path}: more than the {self.n} declared rows written")
        try:
            self._write_rows(start, stop, *columns)
        except Exception as err:
            if is_disk_full(err):
                raise self._full_while_writing() from err
            raise
        self.written = stop

    def _finish(self) -> None:
        """Last changes before the completion mark (e.g. shrink to the rows written)."""
        if self.written != self.n:
            raise ValueError(f"{self.path}: {self.written} of {self.n} rows written")

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._discard()
            return False
        try:
            self._finish()
            for key, value in self.attrs_at_close.items():
                self.file.attrs[key] = value
            self.file.attrs["complete"] = True
            self.closing = True
            self.file.close()
            trim(self.tmp)
            self.replacement.commit()
        except BaseException as err:
            self._discard()
            if is_disk_full(err):
                raise self._full_while_writing() from err
            raise
        return False


def attr_value(value):
    """An HDF5 attribute as a plain Python value (str, int, float, bool)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def complete_attrs(path, file_format: str, datasets, kind: str) -> dict:
    """Attributes of a finished HDF5 store of `file_format` holding `datasets`, as plain values;
    StoreError names the file and what is wrong (unreadable, truncated, another format, no
    completion mark, a dataset missing)."""
    path = Path(path)
    with reading(path), h5py.File(path, "r") as handle:
        attrs = {key: attr_value(value) for key, value in handle.attrs.items()}
        missing = [name for name in datasets if name not in handle]
    if attrs.get("format") != file_format:
        raise StoreError(f"{path}: not an augcache {kind} (format {attrs.get('format')!r})")
    if not attrs.get("complete"):
        raise StoreError(f"{path}: {'store' if kind == 'feature store' else kind} is incomplete "
                         f"(its writer did not finish); {RECOMPUTE}")
    if missing:
        raise StoreError(f"{path}: dataset(s) {', '.join(missing)} missing; {RECOMPUTE}")
    return attrs
