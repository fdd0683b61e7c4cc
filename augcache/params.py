"""The augmentation parameters a manifest holds, and how pixels are resampled: plain values, no
TensorFlow, so the index and manifest jobs start without it. Their meaning is that of
:func:`augcache.augment.augment`."""

from __future__ import annotations

from dataclasses import dataclass

PARAM_COLUMNS = (
    "rotation",
    "width_shift",
    "height_shift",
    "shear",
    "zoom_x",
    "zoom_y",
    "flip_horizontal",
    "flip_vertical",
    "brightness",
    "channel_shift",
)

IDENTITY_PARAMS = (0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0)

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")


@dataclass(frozen=True)
class Resampling:
    """How pixels outside the input are filled and how the input is interpolated."""

    fill_mode: str = "nearest"
    cval: float = 0.0
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"augment.fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"augment.interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )
