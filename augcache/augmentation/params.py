"""The augmentation parameters a manifest holds, and how pixels are resampled: plain values, no
TensorFlow, so the index and manifest jobs start without it. Their meaning is that of
:func:`augcache.augmentation.augment.augment`."""

from __future__ import annotations

from dataclasses import dataclass

# Each column with the value that leaves an image unchanged.
IDENTITY = {
    "rotation": 0.0,
    "width_shift": 0.0,
    "height_shift": 0.0,
    "shear": 0.0,
    "zoom_x": 1.0,
    "zoom_y": 1.0,
    "flip_horizontal": 0.0,
    "flip_vertical": 0.0,
    "brightness": 1.0,
    "channel_shift": 0.0,
    # random resized crop: the box, as fractions of the image's height and width
    "crop_top": 0.0,
    "crop_left": 0.0,
    "crop_height": 1.0,
    "crop_width": 1.0,
    # colour jitter factors
    "contrast": 1.0,
    "saturation": 1.0,
    "hue": 0.0,
    # random erasing: the box, as fractions of the image's height and width, and its fill value
    "erase_top": 0.0,
    "erase_left": 0.0,
    "erase_height": 0.0,
    "erase_width": 0.0,
    "erase_value": 0.0,
}
PARAM_COLUMNS = tuple(IDENTITY)
IDENTITY_PARAMS = tuple(IDENTITY.values())
# Position of each column in a params row.
COLUMN = {name: i for i, name in enumerate(PARAM_COLUMNS)}
GEOMETRY_COLUMNS = PARAM_COLUMNS[:8] + ("crop_top", "crop_left", "crop_height", "crop_width")

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
