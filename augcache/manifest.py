"""Seed manifests: the concrete augmentation of every training sample in one epoch.

Epoch e's manifest is drawn from ``numpy.random.SeedSequence([seed, e])`` alone, so its rows
never depend on how many epochs are cached. Every parameter column is drawn on every run,
whatever the ranges, so switching one option off leaves the other columns' numbers unchanged.
Rows are written in the epoch's shuffle order (``position`` 0, 1, …) with floats in their
shortest round-trip form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from augcache.params import IDENTITY_PARAMS, PARAM_COLUMNS, Resampling

SAMPLE_COLUMNS = ("position", "sample_id", "path", "label", "label_index")


def _pair(value, name: str, centre: float) -> tuple[float, float]:
    """Keras' convention: a float z means [centre - z, centre + z]; a pair is [lower, upper]."""
    if isinstance(value, (int, float)):
        return (centre - float(value), centre + float(value))
    lower, upper = (float(v) for v in value)
    if lower > upper:
        raise ValueError(f"augment.{name}: lower bound {lower} exceeds upper bound {upper}")
    return (lower, upper)


FLOAT_FIELDS = ("rotation_range", "width_shift_range", "height_shift_range", "shear_range",
                "channel_shift_range", "cval")


@dataclass(frozen=True)
class AugmentConfig:
    """Random ranges, with ImageDataGenerator's names and meanings (shifts as fractions)."""

    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    shear_range: float = 0.0
    zoom_range: tuple[float, float] = (1.0, 1.0)
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness_range: tuple[float, float] = (1.0, 1.0)
    channel_shift_range: float = 0.0
    fill_mode: str = "nearest"
    cval: float = 0.0
    interpolation: str = "bilinear"

    @classmethod
    def from_config(cls, cfg: dict) -> "AugmentConfig":
        """From the ``augment`` config section; numbers become floats, so that `0` and `0.0` give
        the same provenance."""
        cfg = dict(cfg)
        for name in FLOAT_FIELDS:
            if name in cfg:
                cfg[name] = float(cfg[name])
        cfg["zoom_range"] = _pair(cfg.get("zoom_range", 0.0), "zoom_range", 1.0)
        brightness = cfg.get("brightness_range")
        cfg["brightness_range"] = (1.0, 1.0) if brightness is None else _pair(brightness, "brightness_range", 1.0)
        return cls(**cfg)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def resampling(self) -> Resampling:
        """How the augmentation fills and interpolates pixels."""
        return Resampling(self.fill_mode, self.cval, self.interpolation)


def draw_params(aug: AugmentConfig, n: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle order and parameters of one epoch.

    Returns (order, params): ``order[i]`` is the index (into the sorted training samples) of the
    sample seen at position i; ``params`` is (n, 10) float64, row j for sample j, columns as in
    ``augcache.augment.PARAM_COLUMNS``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
    order = rng.permutation(n)
    u = rng.random((n, len(PARAM_COLUMNS)))
    sym = 2.0 * u - 1.0
    zlo, zhi = aug.zoom_range
    blo, bhi = aug.brightness_range
    params = np.empty((n, len(PARAM_COLUMNS)), dtype=np.float64)
    params[:, 0] = sym[:, 0] * aug.rotation_range
    params[:, 1] = sym[:, 1] * aug.width_shift_range
    params[:, 2] = sym[:, 2] * aug.height_shift_range
    params[:, 3] = sym[:, 3] * aug.shear_range
    params[:, 4] = zlo + u[:, 4] * (zhi - zlo)
    params[:, 5] = zlo + u[:, 5] * (zhi - zlo)
    params[:, 6] = np.where(aug.horizontal_flip & (u[:, 6] < 0.5), 1.0, 0.0)
    params[:, 7] = np.where(aug.vertical_flip & (u[:, 7] < 0.5), 1.0, 0.0)
    params[:, 8] = blo + u[:, 8] * (bhi - blo)
    params[:, 9] = sym[:, 9] * aug.channel_shift_range
    params += 0.0  # -0.0 (a zero range times a negative draw) is written as 0.0
    return order, params


def build_manifest(train: pd.DataFrame, aug: AugmentConfig, seed: int, epoch: int) -> pd.DataFrame:
    """Manifest rows for one epoch, in shuffle order.

    train: the training rows of the dataset index (sample_id, path, label, label_index).
    """
    samples = train.sort_values("sample_id", kind="stable").reset_index(drop=True)
    order, params = draw_params(aug, len(samples), seed, epoch)
    rows = samples.loc[order, ["sample_id", "path", "label", "label_index"]].reset_index(drop=True)
    rows.insert(0, "position", np.arange(len(rows)))
    table = pd.DataFrame(params[order], columns=list(PARAM_COLUMNS))
    return pd.concat([rows, table], axis=1)


def identity_manifest(samples: pd.DataFrame) -> pd.DataFrame:
    """Rows in sample_id order with parameters that leave every image unchanged."""
    rows = samples.sort_values("sample_id", kind="stable").reset_index(drop=True)
    rows = rows[["sample_id", "path", "label", "label_index"]].copy()
    rows.insert(0, "position", np.arange(len(rows)))
    for name, value in zip(PARAM_COLUMNS, IDENTITY_PARAMS):
        rows[name] = value
    return rows


def write_manifest(table: pd.DataFrame, path) -> None:
    """Write a manifest atomically (floats in their shortest round-trip form)."""
    from augcache.atomic import write_csv

    write_csv(path, table)


def read_manifest(path) -> pd.DataFrame:
    """Read a manifest back; floats come back bit-identical to what was written."""
    table = pd.read_csv(path, dtype={"sample_id": str, "path": str, "label": str})
    missing = [c for c in (*SAMPLE_COLUMNS, *PARAM_COLUMNS) if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    if not np.array_equal(table["position"].to_numpy(), np.arange(len(table))):
        raise ValueError(f"{path}: manifest rows are not in position order 0..{len(table) - 1}")
    return table


def params_array(table: pd.DataFrame) -> np.ndarray:
    """(n, 10) float64 parameters of a manifest, in row order."""
    return table[list(PARAM_COLUMNS)].to_numpy(dtype=np.float64)
