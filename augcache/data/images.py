"""Reading images from disk into 8-bit RGB arrays of one size.

Every image goes through :func:`decode_file` (Pillow), so each file becomes the same 8-bit RGB
array every time, whatever its format or mode:

- formats: JPEG, PNG, BMP, GIF (first frame), WebP;
- the EXIF orientation is applied;
- grayscale and bilevel images are replicated to three channels; palette images are expanded;
- 16- and 32-bit integer images are scaled to 8 bits (value * 255 / 65535, rounded);
- CMYK is converted to RGB by Pillow;
- transparency (RGBA, LA, palette with a transparent colour) is composited over white.

:func:`load_pixels` then brings the image to a size following ``data.resize``: ``stretch`` (as
ImageDataGenerator's ``target_size``), ``crop`` (the largest centred box of the target's aspect
ratio, then resize) or ``pad`` (resize to fit inside, keeping the aspect ratio, and pad with
black). Resizing is Pillow's antialiased bilinear filter and the result is 8-bit, the same numbers
whether they are kept in the pixel store or decoded again for every epoch. A JPEG much larger than
the target is decoded at a reduced DCT scale (Pillow's ``draft``) that keeps at least twice the
target size, which is several times faster than a full decode and changes the result only below
the resolution the resize keeps.
"""

from __future__ import annotations

import numpy as np

from augcache.core import backend

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Pillow's own default: an image with more pixels is refused before it is decoded
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
_max_image_pixels = DEFAULT_MAX_IMAGE_PIXELS
RESIZE_POLICIES = ("stretch", "crop", "pad")
BACKGROUND = (255, 255, 255)
# EXIF orientations that swap width and height when applied
_TRANSPOSED = (5, 6, 7, 8)


class ImageTooLarge(ValueError):
    """An image has more pixels than data.max_image_pixels allows."""


def set_max_image_pixels(limit: int | None) -> None:
    """The largest width x height a file may have (``data.max_image_pixels``; None: no limit).

    It replaces Pillow's decompression-bomb check, so a file over the limit is a bad file like any
    other (named, listed, skippable) rather than a Pillow exception.
    """
    global _max_image_pixels
    _max_image_pixels = None if limit is None else int(limit)


def _check_pixel_count(image, path) -> None:
    width, height = image.size
    if _max_image_pixels is not None and width * height > _max_image_pixels:
        raise ImageTooLarge(
            f"too many pixels: {width}x{height} = {width * height:,}, more than data.max_image_pixels "
            f"({_max_image_pixels:,}); raise that limit if the file is meant to be this large"
        )


def _rgb_image(image):
    """A decoded Pillow image of any mode as an RGB Pillow image."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "F":
        raise ValueError("floating-point images are not supported")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def _draft(image, at_least) -> None:
    """Let a JPEG decode at the smallest DCT scale that keeps (height, width) >= at_least, in
    display orientation. A no-op for other formats."""
    if image.format != "JPEG":
        return
    height, width = at_least
    if image.getexif().get(0x0112) in _TRANSPOSED:
        height, width = width, height
    image.draft(image.mode, (int(width), int(height)))


def _decode(path, at_least):
    """Decode one file to an RGB Pillow image in display orientation."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = None  # checked here instead, against data.max_image_pixels
    with Image.open(path) as image:
        _check_pixel_count(image, path)
        image.seek(0)
        if at_least is not None:
            _draft(image, at_least)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return _rgb_image(image)


def decode_file(path, at_least: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image file to (H, W, 3) uint8 RGB; raises on anything that is not a whole image.

    at_least: (height, width) the decoded image may be reduced to, no smaller, when the format
    can decode at a reduced scale (JPEG); None decodes at full size.
    """
    return np.asarray(_decode(path, at_least), dtype=np.uint8)


def _crop_box(height: int, width: int, size) -> tuple[int, int, int, int]:
    """The largest centred box of size's aspect ratio inside an image: (left, top, right, bottom)."""
    target_h, target_w = size
    scale = min(height / target_h, width / target_w)
    box_h = max(1, round(target_h * scale))
    box_w = max(1, round(target_w * scale))
    top = (height - box_h) // 2
    left = (width - box_w) // 2
    return (left, top, left + box_w, top + box_h)


def _resized(image, size, policy: str):
    """An RGB Pillow image brought to size = (H, W) following the resize policy."""
    from PIL import Image

    if policy not in RESIZE_POLICIES:
        raise ValueError(f"data.resize must be one of {RESIZE_POLICIES}, got {policy!r}")
    height, width = (int(s) for s in size)
    if image.size == (width, height):
        return image
    if policy == "stretch":
        return image.resize((width, height), Image.BILINEAR)
    if policy == "crop":
        cropped = image.crop(_crop_box(image.height, image.width, size))
        return cropped if cropped.size == (width, height) else cropped.resize((width, height), Image.BILINEAR)
    scale = min(height / image.height, width / image.width)
    fit_h = max(1, min(height, round(image.height * scale)))
    fit_w = max(1, min(width, round(image.width * scale)))
    out = Image.new("RGB", (width, height), (0, 0, 0))
    out.paste(image.resize((fit_w, fit_h), Image.BILINEAR), ((width - fit_w) // 2, (height - fit_h) // 2))
    return out


def resize_pixels(rgb: np.ndarray, size, policy: str = "stretch") -> np.ndarray:
    """(h, w, 3) uint8 -> (H, W, 3) uint8 for size = (H, W), following the resize policy."""
    from PIL import Image

    return np.asarray(_resized(Image.fromarray(rgb), size, policy), dtype=np.uint8)


def load_pixels(path, size, policy: str = "stretch") -> np.ndarray:
    """One file as (H, W, 3) uint8 RGB at size = (H, W): decoded (at a reduced JPEG scale that
    keeps twice the size), then resized following the policy."""
    size = tuple(int(s) for s in size)
    image = _decode(path, at_least=(2 * size[0], 2 * size[1]))
    return np.asarray(_resized(image, size, policy), dtype=np.uint8)


def decoder_versions() -> dict[str, str]:
    """Versions of the libraries that turn files into pixels."""
    import PIL
    from PIL import features

    return {
        "pillow_version": PIL.__version__,
        "libjpeg_version": str(features.version("jpg")),
        "zlib_version": str(features.version("zlib")),
        "webp_version": str(features.version("webp")),
    }


def pixel_tensor(path, size: tuple[int, int], policy: str = "stretch"):
    """One file as a (H, W, 3) uint8 tensor: the pixels of :func:`load_pixels`.

    Usable inside ``tf.data`` (path a string tensor) and eagerly.
    """
    tf = backend.tensorflow()

    size = tuple(int(s) for s in size)

    def decode(p):
        p = p.item() if isinstance(p, np.ndarray) else p
        return load_pixels(p.decode() if isinstance(p, bytes) else p, size, policy)

    image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
    image.set_shape([*size, 3])
    return image
