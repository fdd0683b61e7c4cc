"""Keras 3 preprocessing-layer spellings in the ``augment`` section, converted to its own keys.

Accepted where the meaning is the same as a key of ``augment``:

=====================================================  ==========================================
``RandomFlip: horizontal | vertical | horizontal_and_vertical``  ``horizontal_flip`` / ``vertical_flip``
``RandomRotation: f`` or ``{factor: f}``                ``rotation_range: 360 f`` (f a fraction of
                                                       a turn; a pair must be symmetric)
``RandomTranslation: {height_factor: h, width_factor: w}``  ``height_shift_range: h``,
                                                       ``width_shift_range: w`` (symmetric)
``RandomZoom: {height_factor: z, width_factor: z}``     ``zoom_range: [1 + lo, 1 + hi]``
=====================================================  ==========================================

``RandomZoom`` with only a height factor keeps the aspect ratio (one factor for both axes), which
``zoom_range`` (independent factors per axis, as ImageDataGenerator) cannot express: it is refused.
"""

from __future__ import annotations

# What a canonical key holds when the user has not set it (the schema's defaults).
DEFAULTS = {
    "rotation_range": 0,
    "width_shift_range": 0,
    "height_shift_range": 0,
    "zoom_range": 0,
    "horizontal_flip": False,
    "vertical_flip": False,
}
ALIASES = ("RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom")


def _symmetric(value, where: str) -> float:
    """A Keras factor f or (-f, f) as f; an asymmetric pair has no counterpart here."""
    if isinstance(value, (int, float)):
        return abs(float(value))
    lower, upper = (float(v) for v in value)
    if lower != -upper:
        raise ValueError(f"augment.{where}: ({lower}, {upper}) is not symmetric around 0; augcache's "
                         "ranges are symmetric, so give a single factor")
    return upper


def _mapping(value, alias: str, keys: tuple) -> dict:
    if isinstance(value, dict):
        unknown = set(value) - set(keys)
        if unknown:
            raise ValueError(f"augment.{alias}: unknown argument(s) {', '.join(sorted(unknown))} "
                             f"(accepted: {', '.join(keys)})")
        return value
    if isinstance(value, (list, tuple)) and len(value) == len(keys) and alias != "RandomRotation":
        return dict(zip(keys, value))
    return {keys[0]: value}


def _flip(value) -> dict:
    modes = {"horizontal": (True, False), "vertical": (False, True), "horizontal_and_vertical": (True, True)}
    mode = value.get("mode") if isinstance(value, dict) else value
    if mode not in modes:
        raise ValueError(f"augment.RandomFlip: mode {mode!r} is not one of {', '.join(modes)}")
    horizontal, vertical = modes[mode]
    return {"horizontal_flip": horizontal, "vertical_flip": vertical}


def _rotation(value) -> dict:
    factor = _mapping(value, "RandomRotation", ("factor",))["factor"]
    return {"rotation_range": 360.0 * _symmetric(factor, "RandomRotation.factor")}


def _translation(value) -> dict:
    args = _mapping(value, "RandomTranslation", ("height_factor", "width_factor"))
    if "width_factor" not in args:
        raise ValueError("augment.RandomTranslation: width_factor is required, as in Keras")
    return {"height_shift_range": _symmetric(args["height_factor"], "RandomTranslation.height_factor"),
            "width_shift_range": _symmetric(args["width_factor"], "RandomTranslation.width_factor")}


def _zoom(value) -> dict:
    args = _mapping(value, "RandomZoom", ("height_factor", "width_factor"))
    height = args["height_factor"]
    width = args.get("width_factor")
    if width is None:
        raise ValueError(
            "augment.RandomZoom: without width_factor Keras zooms both axes by one factor (keeping the "
            "aspect ratio); zoom_range draws each axis independently, so give width_factor equal to "
            "height_factor, or use zoom_range"
        )

    def bounds(factor):
        return (-abs(float(factor)), abs(float(factor))) if isinstance(factor, (int, float)) \
            else tuple(float(f) for f in factor)

    if bounds(height) != bounds(width):
        raise ValueError(f"augment.RandomZoom: height_factor {height} and width_factor {width} differ; "
                         "zoom_range has one range for both axes")
    lower, upper = bounds(height)
    if lower <= -1:
        raise ValueError(f"augment.RandomZoom: factor {lower} would zoom by {1 + lower} (at most -1 < factor)")
    # Keras' zoom factor z scales the sampling grid by 1 + z (positive zooms out), as zoom_range does
    return {"zoom_range": [1.0 + lower, 1.0 + upper]}


CONVERT = {"RandomFlip": _flip, "RandomRotation": _rotation, "RandomTranslation": _translation,
           "RandomZoom": _zoom}


def canonical_augment(section: dict) -> tuple[dict, list[str]]:
    """(the section with every Keras layer spelling replaced by augcache's keys, one note per
    conversion). A spelling whose key is also set to something other than its default is refused."""
    section = dict(section)
    notes = []
    for alias in ALIASES:
        if alias not in section:
            continue
        value = section.pop(alias)
        converted = CONVERT[alias](value)
        for key, new in converted.items():
            if key in section and section[key] != DEFAULTS[key] and section[key] != new:
                raise ValueError(f"augment: both {alias} and {key} are set; keep one of them")
            section[key] = new
        notes.append(f"augment.{alias}: {value!r} read as " + ", ".join(f"{k}: {v}" for k, v in converted.items()))
    return section, notes


def overlay_augment(section: dict, overlay: dict) -> dict:
    """The augment section `section` with the keys of `overlay` set over it (eval.tta_augment, a
    variant's augment), each side's layer spellings read into augcache's keys first, so that a key
    the overlay sets, to its default too, replaces what a spelling of the section set. Without an
    overlay, the section as it is."""
    if not overlay:
        return dict(section)
    return {**canonical_augment(section)[0], **canonical_augment(overlay)[0]}
