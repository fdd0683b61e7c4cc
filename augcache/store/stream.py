"""Reading feature stores in bounded memory: blocks of rows, read ahead by a thread.

A store's rows are read in their stored order (an epoch store holds its manifest's order) or in a
given order, ``rows_per_block`` at a time, converted to float32. One reader thread opens the file
itself (an HDF5 handle is never shared between threads or across a fork) and stays at most
``readahead`` blocks ahead of the consumer.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np

from augcache.store.features import read_rows
from augcache.store.writer import StoreError, reading

log = logging.getLogger(__name__)

# Blocks alive at once while streaming: `readahead` queued, one being read, one being consumed.
READAHEAD = 2
BLOCKS_ALIVE = READAHEAD + 2


def block_rows(row_bytes: int, batch_size: int, budget_bytes: int) -> int:
    """Rows per block so that BLOCKS_ALIVE float32 blocks fit the budget: a multiple of batch_size,
    at least one batch."""
    rows = budget_bytes // max(1, row_bytes * BLOCKS_ALIVE)
    return max(batch_size, rows // batch_size * batch_size)


class StoreBlocks:
    """Iterable of (features float32, labels int64) blocks of one store.

    order: None for the stored order, else the row numbers to read, in the order to yield them.
    Iterating again reads the file again; a block is read while the previous ones are consumed.
    """

    def __init__(self, path, rows_per_block: int, order: np.ndarray | None = None,
                 readahead: int = READAHEAD):
        self.path = Path(path)
        self.rows_per_block = int(rows_per_block)
        self.order = None if order is None else np.asarray(order, dtype=np.int64)
        self.readahead = readahead

    def n_rows(self) -> int:
        """Rows one pass yields."""
        if self.order is not None:
            return len(self.order)
        import h5py

        with h5py.File(self.path, "r") as handle:
            return len(handle["labels"])

    def _blocks(self, handle):
        y = handle["labels"]
        n = len(y) if self.order is None else len(self.order)
        for start in range(0, n, self.rows_per_block):
            stop = min(n, start + self.rows_per_block)
            if self.order is None:
                yield read_rows(handle, slice(start, stop)), y[start:stop].astype(np.int64)
                continue
            rows = self.order[start:stop]
            sorted_rows, back = np.unique(rows, return_inverse=True)
            if len(sorted_rows) != len(rows):
                raise ValueError(f"{self.path}: order repeats a row")
            yield read_rows(handle, sorted_rows)[back], y[sorted_rows].astype(np.int64)[back]

    def __iter__(self):
        import h5py

        blocks: queue.Queue = queue.Queue(maxsize=self.readahead)
        stop = threading.Event()
        done = object()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    blocks.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read():
            try:
                with reading(self.path), h5py.File(self.path, "r") as handle:
                    for block in self._blocks(handle):
                        if not put(block):
                            return
                put(done)
            except BaseException as err:  # handed to the consumer, which raises it
                put(err)

        reader = threading.Thread(target=read, name=f"read {self.path.name}", daemon=True)
        reader.start()
        try:
            while True:
                item = blocks.get()
                if item is done:
                    return
                if isinstance(item, StoreError):
                    raise item
                if isinstance(item, BaseException):
                    raise StoreError(f"{self.path}: reading features failed ({item!r})") from item
                yield item
        finally:
            stop.set()
            reader.join()
