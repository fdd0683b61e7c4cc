"""Progress lines for long jobs: 'done/total images, rate, eta', at most every few seconds."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class Progress:
    """Log 'done/total, rate, eta' at most every `every` seconds, and once at the end."""

    def __init__(self, total: int, label: str, every: float = 5.0):
        self.total, self.label, self.every = total, label, every
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%s: %d/%d images (%.0f%%), %.1f img/s, %.0f s elapsed, eta %.0f s",
            self.label, done, self.total, 100.0 * done / max(self.total, 1), rate, elapsed, eta,
        )
