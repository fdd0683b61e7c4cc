"""Seed manifests: the concrete augmentation of every training sample in one epoch.

Epoch e's manifest is drawn from ``numpy.random.SeedSequence([seed, e])`` alone, so its rows
never depend on how many epochs are cached. Every parameter column is drawn on every run,
whatever the ranges, so switching one option off leaves the other columns' numbers unchanged.
Rows are written in the epoch's shuffle order (``position`` 0, 1, …) with floats in their
shortest round-trip form.

Random streams. Every random number of a run comes from one of these, each its own numpy
``SeedSequence`` (:func:`seed_sequence`), so that no two streams share numbers:

====================================  =============================================================
training epoch e (its shuffle order   ``SeedSequence([seed, e])``: the original form, which keeps
and augmentation; the unaugmented     every existing manifest's bytes. Epoch numbers stay below
mode's shuffle; on-the-fly epochs)    the split's word (:data:`MAX_EPOCH`; the schema caps every
                                      number of epochs at 9999).
train/val split of a source without   ``SeedSequence([seed, 0x5917])``, kept as it was, so that
splits (:mod:`augcache.data.dataset`)      existing splits (and so every manifest) keep their rows.
test-time view v of an image          ``SeedSequence(seed, spawn_key=(VIEW, v, *id words))``: per
                                      image, from the sha256 of its sample id (the path for
                                      ``augcache predict``), never from its rank among others.
feature-space augmentation, head      ``SeedSequence(seed, spawn_key=(FEATURE_AUGMENT, n))``
epoch n (:mod:`augcache.augmentation.feature_augment`)
fold split (eval.folds)               ``SeedSequence(seed, spawn_key=(FOLDS,))``
heads' initial weights and dropout    Keras' generators, seeded by ``keras.utils.set_random_seed``
                                      with the run's seed (seed + repeat): Keras' own algorithms,
                                      not numpy's PCG64 streams.
====================================  =============================================================

A spawn key puts the seed in a pool of four words and appends the key, so a spawned stream's
entropy has at least six words, where an epoch's has two: the two never coincide (numpy pads
short entropy with zeros, which is why ``[seed, 7, 0]`` and ``[seed, 7]`` are one stream).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from augcache.augmentation.params import COLUMN, IDENTITY_PARAMS, PARAM_COLUMNS, Resampling

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("position", "sample_id", "path", "label", "label_index")

# Spawn keys of the streams apart from the training epochs (see the module's description).
VIEW, FEATURE_AUGMENT, FOLDS = 1, 2, 3
# The split's second word (dataset.stratified_split); epoch numbers stay below it.
SPLIT_WORD = 0x5917
# Epoch numbers stay below the split's word: the schema caps cache.k, head.epochs,
# finetune.epochs and sweeps at 9999, so even a head and a fine-tuning phase together stay below.
MAX_EPOCH = SPLIT_WORD


def seed_sequence(seed: int, stream: str, *numbers: int) -> np.random.SeedSequence:
    """The SeedSequence of one stream (see the module's description): ``"epoch"`` (numbers: e),
    ``"split"``, ``"view"`` (v and the words of an image's id), ``"feature_augment"`` (n),
    ``"folds"``."""
    if stream == "epoch":
        (epoch,) = numbers
        if not 0 <= epoch < MAX_EPOCH:
            raise ValueError(f"epoch {epoch} is outside 0..{MAX_EPOCH - 1}")
        return np.random.SeedSequence([seed, epoch])
    if stream == "split":
        return np.random.SeedSequence([seed, SPLIT_WORD])
    keys = {"view": VIEW, "feature_augment": FEATURE_AUGMENT, "folds": FOLDS}
    return np.random.SeedSequence(seed, spawn_key=(keys[stream], *numbers))


def id_words(sample_id: str) -> tuple[int, ...]:
    """Four 32-bit words of the sha256 of a sample id: an image's own part of its view streams."""
    import hashlib

    return tuple(int(w) for w in np.frombuffer(hashlib.sha256(sample_id.encode()).digest()[:16], dtype="<u4"))


def _pair(value, name: str, centre: float) -> tuple[float, float]:
    """Keras' convention: a float z means [centre - z, centre + z]; a pair is [lower, upper]."""
    if isinstance(value, (int, float)):
        return (centre - float(value), centre + float(value))
    lower, upper = (float(v) for v in value)
    if lower > upper:
        raise ValueError(f"augment.{name}: lower bound {lower} exceeds upper bound {upper}")
    return (lower, upper)


def _jitter(value, name: str, centre: float, floor: float | None) -> tuple[float, float]:
    """torchvision's ColorJitter convention: x means [max(floor, centre - x), centre + x]; a pair is
    [lower, upper]."""
    lower, upper = _pair(value, name, centre)
    return (max(floor, lower) if floor is not None else lower, upper)


FLOAT_FIELDS = ("rotation_range", "width_shift_range", "height_shift_range", "shear_range",
                "channel_shift_range", "cval", "erasing_probability", "erasing_value")
PAIR_FIELDS = ("crop_scale", "crop_ratio", "erasing_scale", "erasing_ratio")


@dataclass(frozen=True)
class AugmentConfig:
    """Random ranges. The first twelve fields have ImageDataGenerator's names and meanings (shifts
    as fractions); crop, colour jitter and erasing have torchvision's (RandomResizedCrop,
    ColorJitter, RandomErasing), with pixel values in [0, 255]."""

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
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    contrast_range: tuple[float, float] = (1.0, 1.0)
    saturation_range: tuple[float, float] = (1.0, 1.0)
    hue_range: tuple[float, float] = (0.0, 0.0)
    erasing_probability: float = 0.0
    erasing_scale: tuple[float, float] = (0.02, 0.33)
    erasing_ratio: tuple[float, float] = (0.3, 3.3)
    erasing_value: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict) -> "AugmentConfig":
        """From the ``augment`` config section, Keras layer spellings converted (see
        :func:`augcache.augmentation.aliases.canonical_augment`); numbers become floats, so that `0` and `0.0`
        give the same provenance."""
        from augcache.augmentation.aliases import canonical_augment

        cfg, notes = canonical_augment(cfg)
        for note in notes:
            log.info("%s", note)
        for name in FLOAT_FIELDS:
            if name in cfg:
                cfg[name] = float(cfg[name])
        for name in PAIR_FIELDS:
            if cfg.get(name) is not None:
                cfg[name] = _pair(cfg[name], name, 0.0)
        cfg["zoom_range"] = _pair(cfg.get("zoom_range", 0.0), "zoom_range", 1.0)
        brightness = cfg.get("brightness_range")
        cfg["brightness_range"] = (1.0, 1.0) if brightness is None else _pair(brightness, "brightness_range", 1.0)
        for name, floor in (("contrast_range", 0.0), ("saturation_range", 0.0)):
            cfg[name] = _jitter(cfg.get(name, 0.0), name, 1.0, floor)
        cfg["hue_range"] = _jitter(cfg.get("hue_range", 0.0), "hue_range", 0.0, None)
        if not -0.5 <= cfg["hue_range"][0] <= cfg["hue_range"][1] <= 0.5:
            raise ValueError(f"augment.hue_range: {list(cfg['hue_range'])} is not within [-0.5, 0.5]")
        return cls(**cfg)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def resampling(self) -> Resampling:
        """How the augmentation fills and interpolates pixels."""
        return Resampling(self.fill_mode, self.cval, self.interpolation)

    @property
    def needs_size(self) -> bool:
        """Whether drawing needs the image size (crop and erasing boxes are whole pixels)."""
        return self.crop_scale is not None or self.erasing_probability > 0


# Uniform numbers drawn per sample for each family of columns, whatever the settings, so that
# switching one family on never moves another's numbers: a crop or an erasing box takes up to 10
# tries of (area, log aspect ratio) and then a position, as torchvision draws them.
TRIES = 10
CROP_DRAWS = 2 * TRIES + 2
JITTER_DRAWS = 3
ERASING_DRAWS = 1 + 2 * TRIES + 2


def _centre_crop(height: int, width: int, ratio) -> tuple[float, float]:
    """(height, width) of RandomResizedCrop's fallback: the whole image, cut to the nearest allowed
    aspect ratio."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return float(np.rint(width / min(ratio))), float(width)
    if in_ratio > max(ratio):
        return float(height), float(np.rint(height * max(ratio)))
    return float(height), float(width)


def _boxes(u: np.ndarray, size, scale, ratio, erasing: bool) -> np.ndarray:
    """(n, 4) boxes (top, left, height, width) in pixels from (n, CROP_DRAWS) uniforms: the first
    try whose box fits, else a centre crop (crop) or no box (erasing), as torchvision's
    RandomResizedCrop.get_params and RandomErasing.get_params."""
    height, width = size
    area = height * width
    log_lo, log_hi = np.log(ratio[0]), np.log(ratio[1])
    tries = u[:, : 2 * TRIES].reshape(len(u), TRIES, 2)
    target = area * (scale[0] + tries[..., 0] * (scale[1] - scale[0]))
    aspect = np.exp(log_lo + tries[..., 1] * (log_hi - log_lo))
    long_side, short_side = np.rint(np.sqrt(target * aspect)), np.rint(np.sqrt(target / aspect))
    if erasing:  # RandomErasing: h from area * ratio, strictly inside the image
        h, w = long_side, short_side
        fits = (h < height) & (w < width)
    else:  # RandomResizedCrop: w from area * ratio, non-empty, at most the image
        w, h = long_side, short_side
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = np.argmax(fits, axis=1)
    rows = np.arange(len(u))
    found = fits[rows, first]
    h, w = h[rows, first], w[rows, first]
    top = np.floor(u[:, -2] * (height - h + 1))
    left = np.floor(u[:, -1] * (width - w + 1))
    if erasing:
        top, left, h, w = (np.where(found, v, 0.0) for v in (top, left, h, w))
    else:
        fallback_h, fallback_w = _centre_crop(height, width, ratio)
        h = np.where(found, h, fallback_h)
        w = np.where(found, w, fallback_w)
        top = np.where(found, top, (height - h) // 2)
        left = np.where(found, left, (width - w) // 2)
    return np.stack([top, left, h, w], axis=1)


def draw_params(aug: AugmentConfig, n: int, seed: int, epoch: int,
                size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle order and parameters of training epoch `epoch`, drawn from its stream alone
    (``seed_sequence(seed, "epoch", epoch)``).

    size: (height, width) in pixels of the images augmented (needed by crop and erasing, whose
        boxes are whole pixels, stored as fractions of the size).
    Returns (order, params): ``order[i]`` is the index (into the sorted training samples) of the
    sample seen at position i; ``params`` is (n, len(PARAM_COLUMNS)) float64, row j for sample j,
    columns as in ``augcache.augmentation.params.PARAM_COLUMNS``.
    """
    return _draw(aug, n, np.random.default_rng(seed_sequence(seed, "epoch", epoch)), size)


def _draw(aug: AugmentConfig, n: int, rng: np.random.Generator,
          size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(order, params) of n samples from one generator (see :func:`draw_params`)."""
    if aug.needs_size and size is None:
        raise ValueError("augment.crop_scale and augment.erasing_probability need the image size")
    order = rng.permutation(n)
    u = rng.random((n, 10))
    u_crop = rng.random((n, CROP_DRAWS))
    u_jitter = rng.random((n, JITTER_DRAWS))
    u_erase = rng.random((n, ERASING_DRAWS))
    sym = 2.0 * u - 1.0
    zlo, zhi = aug.zoom_range
    blo, bhi = aug.brightness_range
    params = np.tile(np.asarray(IDENTITY_PARAMS, dtype=np.float64), (n, 1))
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
    scale = np.array([size[0], size[1], size[0], size[1]], dtype=np.float64) if size is not None else None
    if aug.crop_scale is not None:
        boxes = _boxes(u_crop, size, aug.crop_scale, aug.crop_ratio, erasing=False)
        params[:, COLUMN["crop_top"]:COLUMN["crop_width"] + 1] = boxes / scale
    for name, draw in zip(("contrast", "saturation", "hue"), u_jitter.T):
        lo, hi = getattr(aug, f"{name}_range")
        params[:, COLUMN[name]] = lo + draw * (hi - lo)
    if aug.erasing_probability > 0:
        boxes = _boxes(u_erase[:, 1:], size, aug.erasing_scale, aug.erasing_ratio, erasing=True)
        boxes[u_erase[:, 0] >= aug.erasing_probability] = 0.0
        params[:, COLUMN["erase_top"]:COLUMN["erase_width"] + 1] = boxes / scale
        erased = boxes[:, 2] * boxes[:, 3] > 0
        params[:, COLUMN["erase_value"]] = np.where(erased, aug.erasing_value, 0.0)
    params += 0.0  # -0.0 (a zero range times a negative draw) is written as 0.0
    return order, params


def build_manifest(train: pd.DataFrame, aug: AugmentConfig, seed: int, epoch: int,
                   size: tuple[int, int] | None = None) -> pd.DataFrame:
    """Manifest rows for one epoch, in shuffle order.

    train: the training rows of the dataset index (sample_id, path, label, label_index).
    size: (height, width) of the images augmented, see :func:`draw_params`.
    """
    samples = train.sort_values("sample_id", kind="stable").reset_index(drop=True)
    order, params = draw_params(aug, len(samples), seed, epoch, size)
    rows = samples.loc[order, ["sample_id", "path", "label", "label_index"]].reset_index(drop=True)
    rows.insert(0, "position", np.arange(len(rows)))
    table = pd.DataFrame(params[order], columns=list(PARAM_COLUMNS))
    return pd.concat([rows, table], axis=1)


def view_manifest(samples: pd.DataFrame, aug: AugmentConfig, seed: int, view: int,
                  size: tuple[int, int] | None = None) -> pd.DataFrame:
    """Manifest rows of test-time view `view` (0, 1, …) of a split's samples, in sample_id order
    (the order of the unaugmented store). Each image's numbers come from its own stream,
    ``seed_sequence(seed, "view", view, *id_words(sample_id))``: they depend on (seed, v) and
    the image's id alone, never on how many views there are or which other images are drawn."""
    rows = samples.sort_values("sample_id", kind="stable").reset_index(drop=True)
    params = np.zeros((len(rows), len(PARAM_COLUMNS)))
    for number, sample_id in enumerate(rows["sample_id"]):
        rng = np.random.default_rng(seed_sequence(seed, "view", view, *id_words(str(sample_id))))
        params[number] = _draw(aug, 1, rng, size)[1][0]
    rows = rows[["sample_id", "path", "label", "label_index"]].copy()
    rows.insert(0, "position", np.arange(len(rows)))
    return pd.concat([rows, pd.DataFrame(params, columns=list(PARAM_COLUMNS))], axis=1)


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
    from augcache.core.atomic import write_csv

    write_csv(path, table)


def manifest_rows(path) -> int:
    """How many samples a manifest lists (its lines but the header), without parsing it."""
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return max(0, lines - 1)


def read_manifest(path, rows: tuple[int, int] | None = None) -> pd.DataFrame:
    """Read a manifest back; floats come back bit-identical to what was written.

    rows: (start, stop) to read only positions start..stop-1 (an extraction shard's), so that a
    shard's memory and parsing follow its own rows, not the epoch's.
    """
    dtype = {"sample_id": str, "path": str, "label": str}
    if rows is None:
        table, first = pd.read_csv(path, dtype=dtype), 0
    else:
        first, stop = rows
        if stop > first:
            table = pd.read_csv(path, dtype=dtype, skiprows=range(1, first + 1), nrows=stop - first)
        else:  # no rows, the columns' types of the first
            table = pd.read_csv(path, dtype=dtype, nrows=1).iloc[:0]
    missing = [c for c in (*SAMPLE_COLUMNS, *PARAM_COLUMNS) if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    if not np.array_equal(table["position"].to_numpy(), np.arange(first, first + len(table))):
        raise ValueError(f"{path}: manifest rows are not in position order {first}..{first + len(table) - 1}")
    return table.reset_index(drop=True)


def params_array(table: pd.DataFrame) -> np.ndarray:
    """(n, len(PARAM_COLUMNS)) float64 parameters of a manifest, in row order."""
    return table[list(PARAM_COLUMNS)].to_numpy(dtype=np.float64)
