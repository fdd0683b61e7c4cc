"""The pixel store: every indexed image decoded and resized once, kept as 8-bit RGB.

``pixels`` (n, H, W, 3) uint8 holds the images of the dataset index in index order (sorted by
sample id, both splits), one chunk per image with a fletcher32 checksum, beside ``sample_ids``
(n,). Augmentation is a pure function of (pixels, manifest numbers), so every epoch's extraction,
the validation and unaugmented stores, and the replay and on-the-fly baselines read their pixels
here instead of decoding the files again. The pixels are exactly those of
:func:`augcache.data.images.load_pixels`, so features are the same with or without the store.

Provenance attributes: ``index_sha256`` (the listing the rows come from), ``pixel_size``,
``resize``, the decoder versions, and ``pixels_sha256`` over every sample id and pixel byte in
row order, which feature stores record as the identity of their input.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from augcache.core import backend
from augcache.core.provenance import ProvenanceError, check_fields, sha256_file
from augcache.store.merge import SHARD_FIELDS, check_parts
from augcache.store.space import DiskFullError, mib
from augcache.store.writer import RECOMPUTE, STRING_DTYPE, StoreError, StoreWriter, complete_attrs, reading

FORMAT = "augcache-pixels/1"
DATASETS = ("pixels", "sample_ids")
log = logging.getLogger(__name__)


def pixel_size_json(size) -> str:
    return json.dumps([int(s) for s in size])


def store_bytes(n: int, size) -> int:
    """Bytes of n images of size (H, W) in a pixel store."""
    return int(n) * int(size[0]) * int(size[1]) * 3


class PixelWriter(StoreWriter):
    """A pixel store of at most n images of size (H, W); ``write(pixels, sample_ids)`` appends rows.

    Fewer than n rows may be written (images found bad while decoding): the store is cut to the
    rows written when it is closed.
    """

    def __init__(self, path, n: int, size, attrs: dict):
        super().__init__(path, n, attrs)
        self.size = tuple(int(s) for s in size)
        self.digest = hashlib.sha256()

    def _size_bound(self) -> int:
        return int(store_bytes(self.n, self.size) * 1.01) + self.n * 80 + (1 << 18)

    def _create(self) -> None:
        rows = max(1, self.n)
        self.pixels = self.file.create_dataset(
            "pixels", shape=(rows, *self.size, 3), maxshape=(None, *self.size, 3), dtype=np.uint8,
            chunks=(1, *self.size, 3), fletcher32=True)
        self.sample_ids = self.file.create_dataset("sample_ids", shape=(rows,), maxshape=(None,),
                                                   dtype=STRING_DTYPE, chunks=(min(rows, 4096),))

    def _describe(self) -> None:
        self.file.attrs["format"] = FORMAT
        self.file.attrs["pixel_size"] = pixel_size_json(self.size)

    def _write_rows(self, start: int, stop: int, pixels, sample_ids) -> None:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        self.pixels[start:stop] = pixels
        self.sample_ids[start:stop] = list(sample_ids)
        for sample_id, image in zip(sample_ids, pixels):
            self.digest.update(sample_id.encode() + b"\0")
            self.digest.update(image.tobytes())

    def _finish(self) -> None:
        self.pixels.resize(self.written, axis=0)
        self.sample_ids.resize(self.written, axis=0)
        self.file.attrs["n_images"] = self.written
        self.file.attrs["pixels_sha256"] = self.digest.hexdigest()

    def _discard(self) -> None:
        self.pixels = self.sample_ids = None
        super()._discard()


def read_pixel_attrs(path) -> dict:
    """Attributes of a complete pixel store; StoreError names the file and what is wrong."""
    return complete_attrs(path, FORMAT, DATASETS, "pixel store")


class PixelStore:
    """A checked pixel store: its attributes, and its rows looked up by sample id.

    index: the dataset index CSV the store must have been made from (its sha256 is compared);
    size, resize: what the reader needs. A mismatch raises ProvenanceError naming the file and
    the field.
    """

    def __init__(self, path, index=None, size=None, resize: str | None = None):
        self.path = Path(path)
        self.attrs = read_pixel_attrs(self.path)
        expected = {}
        if index is not None:
            expected["index_sha256"] = sha256_file(index)
        if size is not None:
            expected["pixel_size"] = pixel_size_json(size)
        if resize is not None:
            expected["resize"] = resize
        check_fields(self.path, self.attrs, expected)
        self.size = tuple(json.loads(self.attrs["pixel_size"]))
        with reading(self.path), h5py.File(self.path, "r") as handle:
            self._ids = handle["sample_ids"][:]  # UTF-8 bytes, in sample id order as written
        # ids in order are looked up by binary search, without a string or a mapping per row
        # (a shard job of a million-image store reads them in a third of the time); otherwise by a mapping
        in_order = bool(np.all(self._ids[:-1] < self._ids[1:]))
        self._row = None if in_order else {s.decode(): i for i, s in enumerate(self._ids)}

    @property
    def sha256(self) -> str:
        return self.attrs["pixels_sha256"]

    def rows(self, sample_ids) -> np.ndarray:
        """Row numbers of the given samples; StoreError for a sample the store does not hold."""
        if self._row is not None:
            missing = next((s for s in sample_ids if s not in self._row), None)
            rows = None if missing is not None else np.array([self._row[s] for s in sample_ids], dtype=np.int64)
        else:
            wanted = np.array([s.encode() for s in sample_ids], dtype=object)
            rows = np.minimum(np.searchsorted(self._ids, wanted), max(len(self._ids) - 1, 0)).astype(np.int64)
            found = self._ids[rows] == wanted if len(self._ids) else np.zeros(len(wanted), dtype=bool)
            missing = None if found.all() else wanted[np.argmin(found)].decode()
        if missing is not None:
            raise StoreError(f"{self.path}: no image for sample {missing!r}: the pixel store was made "
                             f"from another listing; {RECOMPUTE}")
        return rows

    def batches(self, rows, batch_size: int):
        """Yield (B, H, W, 3) uint8 arrays of the given rows, in the given order.

        Rows come in any order (an epoch's shuffle), one image chunk each: every row is read with
        one call of HDF5's own read on a reused selection, which costs little more per image than
        reading consecutive rows in slices (``benchmarks/pixel_feed.py`` measures both); checksums
        are verified as with any read. The file is opened here, so the generator can run in its own
        thread.
        """
        rows = np.asarray(rows, dtype=np.int64)
        one = (1, *self.size, 3)
        with reading(self.path), h5py.File(self.path, "r") as handle:
            dataset = handle["pixels"].id
            selection = dataset.get_space()
            memory = h5py.h5s.create_simple(one)
            for start in range(0, len(rows), batch_size):
                part = rows[start:start + batch_size]
                out = np.empty((len(part), *self.size, 3), dtype=np.uint8)
                for j, row in enumerate(part):
                    selection.select_hyperslab((int(row), 0, 0, 0), one)
                    dataset.read(memory, selection, out[j:j + 1])
                yield out


class Pixels:
    """Where the pixels of an extraction come from: the pixel store, or decoding every file.

    size: (H, W) of the pixels (``data.pixel_size``, or ``data.image_size``); resize: the policy
    that brought the files to it; store: a checked :class:`PixelStore`, or None to decode each
    file with :func:`augcache.data.images.load_pixels` (the same numbers, computed again).
    """

    def __init__(self, size, resize: str = "stretch", store: PixelStore | None = None):
        self.size = tuple(int(s) for s in size)
        self.resize = resize
        self.store = store
        if store is not None and store.size != self.size:
            raise StoreError(f"{store.path}: pixels of size {store.size}, expected {self.size}")

    def provenance(self) -> dict:
        """Fields a feature store records about its pixels (information; features are equal
        either way)."""
        return {"pixel_size": pixel_size_json(self.size),
                "pixels_sha256": self.store.sha256 if self.store is not None else "decoded"}

    def describe(self) -> str:
        if self.store is None:
            return f"decoding every image file ({self.resize} to {self.size[0]}x{self.size[1]})"
        return f"reading pixels from {self.store.path}"

    def array_batches(self, sample_ids, paths, batch_size: int, workers: int = 1):
        """Yield (B, H, W, 3) uint8 arrays of the given samples, in order, under any backend: rows
        of the pixel store, or files decoded by `workers` threads (the pixels of
        :func:`augcache.data.images.load_pixels`, as :meth:`batches` decodes them)."""
        if self.store is not None:
            yield from self.store.batches(self.store.rows(list(sample_ids)), batch_size)
            return
        from concurrent.futures import ThreadPoolExecutor

        from augcache.data.images import load_pixels

        paths = [str(p) for p in paths]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for start in range(0, len(paths), batch_size):
                chunk = paths[start:start + batch_size]
                yield np.stack(list(pool.map(lambda p: load_pixels(p, self.size, self.resize), chunk)))

    def batches(self, sample_ids, paths, batch_size: int, workers: int = 1):
        """tf.data dataset of (B, H, W, 3) uint8 batches of the given samples, in order."""
        tf = backend.tensorflow()

        if self.store is not None:
            rows = self.store.rows(list(sample_ids))
            spec = tf.TensorSpec((None, *self.size, 3), tf.uint8)
            return tf.data.Dataset.from_generator(lambda: self.store.batches(rows, batch_size),
                                                  output_signature=spec)
        from augcache.data.images import pixel_tensor

        data = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
        data = data.map(lambda path: pixel_tensor(path, self.size, self.resize),
                        num_parallel_calls=workers, deterministic=True)
        return data.batch(batch_size)


def open_pixels(size, resize: str, store=None, index=None) -> Pixels:
    """Pixels of size (H, W) read from the pixel store at `store` (checked against the index CSV,
    the size and the resize policy), or decoded from the files when store is None."""
    checked = PixelStore(store, index, size, resize) if store else None
    return Pixels(size, resize, checked)


# From this many images on, the index job says that data.decode_shards can spread its decoding.
MANY_IMAGES = 50_000


def index_with_pixel_store(source, val_fraction: float, seed: int, on_bad_image: str, threads: int,
                           out_path, size, resize: str, test_dir=None):
    """(index, skipped) of a source, as :func:`augcache.data.dataset.build_index`, and the pixel store
    of the indexed images at out_path: each file decoded once, both for its check and its pixels.

    A store that cannot fit on its disk fails before any image is decoded.
    """
    from augcache.core.atomic import csv_text
    from augcache.data.dataset import build_index
    from augcache.data.images import decoder_versions, load_pixels
    from augcache.data.listing import list_source

    size = tuple(int(s) for s in size)
    listing = list_source(source, test_dir)
    n = len(listing[0])
    log.info("pixel store: up to %d images of %dx%d, %s, at %s", n, *size, mib(store_bytes(n, size)),
             out_path)
    if n >= MANY_IMAGES:
        log.info("%d images are checked and decoded by this one job (on %d threads); data.decode_shards splits "
                 "that work into cluster jobs", n, threads)
    attrs = dict(decoder_versions(), resize=resize)
    try:
        with PixelWriter(out_path, n, size, attrs) as writer:
            table, skipped = build_index(source, val_fraction, seed, on_bad_image, threads,
                                         decode=lambda path: load_pixels(path, size, resize),
                                         sink=writer.write, listing=listing)
            writer.attrs_at_close["index_sha256"] = hashlib.sha256(csv_text(table).encode()).hexdigest()
    except DiskFullError as err:
        raise DiskFullError(f"{err}; or set data.pixel_store: false to decode the images for every "
                            "epoch instead of keeping their pixels") from err
    log.info("pixel store: %d images written to %s", len(table), out_path)
    return table, skipped


# Fields that differ between the shards of one pixel store.
PER_SHARD_PIXEL_FIELDS = ("shard", "row_start", "row_stop", "n_images", "pixels_sha256")


def shard_range(n: int, shards: int, shard: int) -> tuple[int, int]:
    """Rows [start, stop) of one of `shards` equal parts of n rows (the last ones may be empty)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    per_shard = -(-n // shards)
    start = min(n, shard * per_shard)
    return start, min(n, start + per_shard)


def decode_shard(candidates_path, out_path, skipped_path, size, resize: str, threads: int, shard: int = 0,
                 shards: int = 1) -> None:
    """One shard of the listed files (:func:`augcache.data.listing.write_listing`): each file decoded
    once, its check and its pixels at the same time, as the index step does with one shard.

    out_path: the pixels of the shard's good files, for :func:`merge_pixel_shards`; skipped_path:
    the shard's bad files and why, for the index step (:func:`augcache.data.dataset.index_of_shards`)."""
    from augcache.core.atomic import write_csv
    from augcache.data.dataset import check_all
    from augcache.data.images import decoder_versions, load_pixels
    from augcache.data.listing import SKIPPED_COLUMNS, candidates_of, read_candidates

    size = tuple(int(s) for s in size)
    listed = read_candidates(candidates_path)
    start, stop = shard_range(len(listed), shards, shard)
    candidates = candidates_of(listed.iloc[start:stop])
    attrs = dict(decoder_versions(), resize=resize, candidates_sha256=sha256_file(candidates_path), shard=shard,
                 shards=shards, row_start=start, row_stop=stop)
    with PixelWriter(out_path, len(candidates), size, attrs) as writer:
        _, problems = check_all(candidates, threads, lambda path: load_pixels(path, size, resize), writer.write,
                                label=f"decode shard {shard + 1}/{shards} (files {start}-{stop})")
        write_csv(skipped_path, pd.DataFrame(problems, columns=list(SKIPPED_COLUMNS)))
    if problems:
        log.warning("%d bad file(s) in this shard, left for the index step to report (%s)", len(problems),
                    skipped_path)


def merge_pixel_shards(shard_paths, index_path, out_path) -> dict:
    """One pixel store from the shards of :func:`decode_shard`, checked to be consecutive parts of
    one listing, of the same size and decoders, holding exactly the index's images in its order:
    the store the index step would have written."""
    from augcache.data.dataset import read_index

    shard_paths = [Path(p) for p in shard_paths]

    def shard_fields(i, checked):
        return {"shard": i, "shards": len(shard_paths), "row_start": int(checked[-1]["row_stop"]) if checked else 0}

    shared, parts = check_parts(shard_paths, PER_SHARD_PIXEL_FIELDS, shard_fields, read=read_pixel_attrs)
    size = tuple(json.loads(shared["pixel_size"]))
    attrs = {k: v for k, v in shared.items() if k not in SHARD_FIELDS + ("format", "complete", "pixel_size",
                                                                          "candidates_sha256")}
    expected = read_index(index_path, ["sample_id"])["sample_id"].tolist()
    written = 0
    with PixelWriter(out_path, sum(int(p["n_images"]) for p in parts), size, attrs) as writer:
        for path in shard_paths:
            with reading(path), h5py.File(path, "r") as handle:
                for start in range(0, len(handle["sample_ids"]), 256):
                    ids = [s.decode() for s in handle["sample_ids"][start:start + 256]]
                    if ids != expected[written:written + len(ids)]:
                        raise ProvenanceError(f"{path}: its images are not the rows {written}.. of {index_path} "
                                              f"(the shards were decoded from another listing); {RECOMPUTE}")
                    writer.write(handle["pixels"][start:start + 256], ids)
                    written += len(ids)
        if written != len(expected):
            raise ProvenanceError(f"{index_path} lists {len(expected)} images, the shards hold {written}; "
                                  f"{RECOMPUTE}")
        writer.attrs_at_close["index_sha256"] = sha256_file(index_path)
    return read_pixel_attrs(out_path)
