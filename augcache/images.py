"""Reading images from disk into float32 RGB arrays of one size.

Every image goes through :func:`decode_file` (Pillow), so each file becomes the same 8-bit RGB
array every time, whatever its format or mode:

- formats: JPEG, PNG, BMP, GIF (first frame), WebP;
- the EXIF orientation is applied;
- grayscale and bilevel images are replicated to three channels; palette images are expanded;
- 16- and 32-bit integer images are scaled to 8 bits (value * 255 / 65535, rounded);
- CMYK is converted to RGB by Pillow;
- transparency (RGBA, LA, palette with a transparent colour) is composited over white.

Resizing to ``image_size`` then follows ``data.resize``: ``stretch`` (as ImageDataGenerator's
``target_size``), ``crop`` (the largest centred box of the target's aspect ratio, then resize) or
``pad`` (resize to fit inside, keeping the aspect ratio, and pad with black).
"""

from __future__ import annotations

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
RESIZE_POLICIES = ("stretch", "crop", "pad")
BACKGROUND = (255, 255, 255)


def _to_rgb(image) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        raise ValueError("floating-point images are not supported")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def decode_file(path) -> np.ndarray:
    """Decode one image file to (H, W, 3) uint8 RGB; raises on anything that is not a whole image."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)


def _resize(image, size, policy: str):
    import tensorflow as tf

    height, width = size
    if policy == "stretch":
        return tf.image.resize(image, size, method="bilinear")
    if policy == "pad":
        return tf.image.resize_with_pad(image, height, width, method="bilinear")
    if policy == "crop":
        shape = tf.cast(tf.shape(image)[:2], tf.float64)
        scale = tf.minimum(shape[0] / height, shape[1] / width)
        box = tf.cast(tf.round(tf.stack([height * scale, width * scale])), tf.int32)
        box = tf.maximum(box, 1)
        top = (tf.shape(image)[0] - box[0]) // 2
        left = (tf.shape(image)[1] - box[1]) // 2
        cropped = image[top:top + box[0], left:left + box[1]]
        return tf.image.resize(cropped, size, method="bilinear")
    raise ValueError(f"data.resize must be one of {RESIZE_POLICIES}, got {policy!r}")


def load_image(path, size: tuple[int, int], policy: str = "stretch"):
    """One file as a (H, W, 3) float32 tensor in [0, 255], resized to size = (height, width).

    Usable inside ``tf.data`` (path a string tensor) and eagerly.
    """
    import tensorflow as tf

    def decode(p):
        p = p.item() if isinstance(p, np.ndarray) else p
        return decode_file(p.decode() if isinstance(p, bytes) else p)

    image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    image = _resize(tf.cast(image, tf.float32), tuple(int(s) for s in size), policy)
    return tf.clip_by_value(image, 0.0, 255.0)


def load_images(paths, size: tuple[int, int], policy: str = "stretch"):
    """(N, H, W, 3) float32 stack of :func:`load_image` for a list of paths."""
    import tensorflow as tf

    return tf.stack([load_image(tf.constant(str(p)), size, policy) for p in paths])
