"""Feature-space augmentation: seeded transforms of the frozen base's features themselves.

Two families, after two published methods:

- pointwise (FroFA, Bär et al., CVPR 2024), on any features: each sample's features are mapped to
  [0, 1] by their own smallest and largest value, shifted (brightness), scaled about their mean
  (contrast) and reduced to fewer levels (posterize), then mapped back. With ``per_channel`` the
  brightness and contrast are drawn for every channel (the paper's best variant);
- spatial (LOFF-TA, Konuk et al., NeurIPS 2024), on spatial features (B, H, W, C) only: a
  horizontal flip and a crop resized back to H x W (nearest cell).

The numbers of head epoch n are drawn from (seed, n) alone, like a manifest's, one row per position
in the epoch's feed order (:func:`draw_feature_params`), and applied by one function
(:func:`augment_features`). Per-channel values come from each row's ``channel_seed``, so the table
stays one row per sample however many channels the features have.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from augcache.augmentation.manifest import seed_sequence
from augcache.core.atomic import atomic_path, csv_text

FEATURE_PARAM_COLUMNS = ("head_epoch", "position", "brightness", "contrast", "posterize_bits", "flip",
                         "crop_top", "crop_left", "crop_height", "crop_width", "channel_seed")


@dataclass(frozen=True)
class FeatureAugmentConfig:
    """The ``feature_augment`` config section.

    brightness: shift drawn in [-b, b], in units of the sample's feature range.
    contrast: factor drawn in [1 - c, 1 + c], about the sample's mean.
    posterize_bits: 0 (off), or each sample is reduced to 2**bits levels, bits drawn in
        [posterize_bits, 8].
    per_channel: brightness and contrast drawn for each channel instead of once per sample.
    flip: spatial features are flipped left-right with probability 0.5.
    crop: spatial features are cropped to a box whose sides keep a fraction in [1 - crop, 1] of the
        map's, at a random place, and resized back (nearest cell).
    """

    brightness: float = 0.1
    contrast: float = 0.0
    posterize_bits: int = 0
    per_channel: bool = True
    flip: bool = False
    crop: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict | None) -> "FeatureAugmentConfig":
        config = cls(**(cfg or {}))
        if not 0 <= config.crop < 1:
            raise ValueError(f"feature_augment.crop must be in [0, 1), got {config.crop}")
        if config.posterize_bits not in range(0, 9):
            raise ValueError(f"feature_augment.posterize_bits must be 0 (off) to 8, got {config.posterize_bits}")
        return config

    @property
    def spatial(self) -> bool:
        """Whether a spatial transform is asked for (they need spatial features)."""
        return self.flip or self.crop > 0

    def to_dict(self) -> dict:
        return asdict(self)

    def check_features(self, feature_shape) -> None:
        """ValueError when a spatial transform is asked for and the features are not a map."""
        if self.spatial and len(feature_shape) != 3:
            raise ValueError(
                f"feature_augment.flip and feature_augment.crop transform spatial features (H, W, C), but "
                f"the stored features have shape {tuple(feature_shape)}: set them to false and 0, or store "
                f"spatial features (conv_base.pooling: null, or none for a transformer's patch grid)")


def draw_feature_params(cfg: FeatureAugmentConfig, n: int, seed: int, head_epoch: int,
                        map_size: tuple[int, int] | None = None) -> pd.DataFrame:
    """The feature transforms of head epoch `head_epoch`: one row per feed position 0..n-1, columns
    :data:`FEATURE_PARAM_COLUMNS`. Identity values where a transform is off. map_size: (H, W) of
    spatial features, whose crop boxes are whole cells."""
    # a stream of its own, apart from the manifests' (see augcache.augmentation.manifest)
    rng = np.random.default_rng(seed_sequence(seed, "feature_augment", head_epoch))
    u = rng.random((n, 6))
    table = pd.DataFrame({
        "head_epoch": np.full(n, head_epoch, dtype=np.int64),
        "position": np.arange(n, dtype=np.int64),
        "brightness": (2 * u[:, 0] - 1) * cfg.brightness,
        "contrast": 1 + (2 * u[:, 1] - 1) * cfg.contrast,
        "posterize_bits": (cfg.posterize_bits + np.floor(u[:, 2] * (9 - cfg.posterize_bits))).astype(np.int64)
        if cfg.posterize_bits else np.zeros(n, dtype=np.int64),
        "flip": ((u[:, 3] < 0.5) & cfg.flip).astype(np.int64),
    })
    height, width = map_size or (1, 1)
    keep = 1 - cfg.crop * rng.random((n, 2))
    crop_height = np.clip(np.round(keep[:, 0] * height), 1, height).astype(np.int64)
    crop_width = np.clip(np.round(keep[:, 1] * width), 1, width).astype(np.int64)
    table["crop_top"] = np.floor(u[:, 4] * (height - crop_height + 1)).astype(np.int64)
    table["crop_left"] = np.floor(u[:, 5] * (width - crop_width + 1)).astype(np.int64)
    table["crop_height"], table["crop_width"] = crop_height, crop_width
    table["channel_seed"] = rng.integers(0, 2**62, n, dtype=np.int64)
    return table[list(FEATURE_PARAM_COLUMNS)]


def _per_sample(values: np.ndarray, rows: pd.DataFrame, cfg: FeatureAugmentConfig, channels: int,
                column: str, spread: float, centre: float) -> np.ndarray:
    """(B, C) values of one transform: the row's own value on every channel, or with per_channel
    one value per channel drawn in [centre - spread, centre + spread] from the row's channel_seed."""
    if not cfg.per_channel or spread == 0:
        return np.repeat(values[:, None], channels, axis=1)
    offset = {"brightness": 0, "contrast": 1}[column]
    draws = np.stack([np.random.default_rng([int(s), offset]).random(channels)
                      for s in rows["channel_seed"]])
    return centre + (2 * draws - 1) * spread


def augment_features(x: np.ndarray, rows: pd.DataFrame, cfg: FeatureAugmentConfig) -> np.ndarray:
    """Apply one row of feature transforms to each sample: x (B, *feature_shape) float32, rows the
    B rows of :func:`draw_feature_params` in the same order. Returns float32 of the same shape;
    each sample's result depends on its own features and row only."""
    x = np.asarray(x, np.float32)
    if len(rows) != len(x):
        raise ValueError(f"{len(x)} samples but {len(rows)} rows of feature transforms")
    out = np.empty_like(x)
    channels = x.shape[-1]
    brightness = _per_sample(rows["brightness"].to_numpy(), rows, cfg, channels, "brightness", cfg.brightness, 0.0)
    contrast = _per_sample(rows["contrast"].to_numpy(), rows, cfg, channels, "contrast", cfg.contrast, 1.0)
    for i, row in enumerate(rows.itertuples(index=False)):
        sample = x[i].astype(np.float64)
        if len(x.shape) == 4:
            sample = _spatial(sample, row)
        out[i] = _pointwise(sample, brightness[i], contrast[i], int(row.posterize_bits))
    return out


def _pointwise(sample: np.ndarray, brightness: np.ndarray, contrast: np.ndarray, bits: int) -> np.ndarray:
    """FroFA's transforms on one sample (channels last), in its own [0, 1] range."""
    low, high = float(sample.min()), float(sample.max())
    if high <= low:
        return sample.astype(np.float32)
    unit = (sample - low) / (high - low)
    mean = unit.mean()
    unit = (unit - mean) * contrast + mean + brightness
    if bits:
        levels = 2 ** bits
        unit = np.floor(np.clip(unit, 0, 1) * (levels - 1) + 0.5) / (levels - 1)
    return (unit * (high - low) + low).astype(np.float32)


def _spatial(sample: np.ndarray, row) -> np.ndarray:
    """LOFF-TA's transforms on one spatial map (H, W, C): crop resized back (nearest), then flip."""
    height, width = sample.shape[:2]
    if row.crop_height != height or row.crop_width != width:
        rows = row.crop_top + (np.arange(height) * row.crop_height) // height
        cols = row.crop_left + (np.arange(width) * row.crop_width) // width
        sample = sample[rows][:, cols]
    if row.flip:
        sample = sample[:, ::-1]
    return sample


class FeatureAugmented:
    """A training feature source (see :func:`augcache.training.train.train_head`) whose blocks of head epoch
    n are transformed by that epoch's feature transforms, position by position. The rows drawn
    are kept, each head epoch's as one gzip member of CSV text (a few dozen bytes a row), so a run
    can write them next to its metrics (:meth:`write`)."""

    def __init__(self, source, cfg: FeatureAugmentConfig, seed: int, n_samples: int, feature_shape):
        cfg.check_features(feature_shape)
        self.source, self.cfg, self.seed, self.n_samples = source, cfg, seed, n_samples
        self.map_size = tuple(feature_shape[:2]) if len(feature_shape) == 3 else None
        self.drawn: list[bytes] = []
        self.extraction_seconds = getattr(source, "extraction_seconds", None)

    def __call__(self, n: int):
        blocks, seconds = self.source(n)
        table = draw_feature_params(self.cfg, self.n_samples, self.seed, n, self.map_size)
        # no time stamp: the same rows give the same bytes
        self.drawn.append(gzip.compress(csv_text(table, header=not self.drawn).encode(), mtime=0))
        return self._transformed(blocks, table), seconds

    def _transformed(self, blocks, table: pd.DataFrame):
        start = 0
        for x, y in blocks:
            rows = table.iloc[start:start + len(y)]
            start += len(y)
            yield augment_features(x, rows, self.cfg), y

    def write(self, path) -> None:
        """Write every row drawn so far, head epoch by head epoch, as one gzip-compressed CSV
        (atomically)."""
        with atomic_path(path, ".gz") as tmp:
            tmp.write_bytes(b"".join(self.drawn))
