"""The augmentation function: ``augment(images, params) -> images``, in Keras ops.

Every augmented image in augcache (cached extraction, on-the-fly replay, tests) is made by
:func:`augment` from a row of concrete parameters, so the numbers written in a manifest fully
determine the pixels. Option names and meanings follow Keras' ``ImageDataGenerator``.

Parameter columns (one row per image, float):

=================  ======================================================================
``rotation``       degrees, counter-clockwise
``width_shift``    fraction of the width; positive moves the content right
``height_shift``   fraction of the height; positive moves the content down
``shear``          shear angle in degrees (counter-clockwise, as in Keras)
``zoom_x``         sampling scale along x, as in Keras: < 1 magnifies, > 1 shrinks
``zoom_y``         sampling scale along y
``flip_horizontal`` 1.0 mirrors left-right, 0.0 does not
``flip_vertical``  1.0 mirrors top-bottom, 0.0 does not
``brightness``     factor multiplying every pixel (1.0: unchanged), clipped to [0, 255]
``channel_shift``  intensity added to every channel, clipped per channel to the image's range
``crop_*``         random resized crop: the box (top, left, height, width) as fractions of the
                   image's height and width, resized to the whole image (torchvision's
                   RandomResizedCrop; identity 0, 0, 1, 1)
``contrast``       blend with the mean grey level of the image (torchvision's ColorJitter)
``saturation``     blend with the image's grey levels (ColorJitter)
``hue``            added to the hue, in turns, modulo 1 (ColorJitter)
``erase_*``        random erasing: the box (top, left, height, width) as fractions of the
                   image's height and width, set to ``erase_value`` (torchvision's RandomErasing;
                   a box of height or width 0 erases nothing)
=================  ======================================================================

Order of operations: geometry (one projective resampling: the crop first, then the operations of
``ImageDataGenerator.apply_transform``, flips included), then channel shift, brightness,
contrast, saturation, hue (a fixed order, where ColorJitter draws one), then erasing.
Grey levels are torchvision's: 0.2989 R + 0.587 G + 0.114 B.

Written with ``keras.ops`` only, so it runs under any Keras 3 backend. Under TensorFlow every op is
the TensorFlow kernel it always was (the resampling is ``ImageProjectiveTransformV3``); other
backends compute the same images within rounding (``tests/test_backends.py`` states by how much).
"""

from __future__ import annotations

import math

from keras import ops

from augcache.core import backend
# The parameter columns and resampling settings live in a module without Keras (manifests use them).
from augcache.augmentation.params import COLUMN, GEOMETRY_COLUMNS, IDENTITY, Resampling

GREY = (0.2989, 0.587, 0.114)


def _sampling_transforms(params, height, width):
    """(B, len(PARAM_COLUMNS)) params -> (B, 8) output-to-input maps (ImageProjectiveTransformV3's,
    which ``keras.ops.image.affine_transform`` takes)."""
    p = ops.unstack(ops.cast(params, "float32"), axis=1)
    rotation, width_shift, height_shift, shear, zoom_x, zoom_y, flip_h, flip_v = p[:8]
    crop_top, crop_left, crop_height, crop_width = (p[COLUMN[name]] for name in GEOMETRY_COLUMNS[8:])
    h = ops.cast(height, "float32")
    w = ops.cast(width, "float32")
    cx = (w - 1.0) / 2.0
    cy = (h - 1.0) / 2.0
    theta = rotation * (math.pi / 180.0)
    sh = shear * (math.pi / 180.0)
    # Output point p (column x, row y) samples the input at c + Z S R (F (p - c) - t):
    # F flips (the last image operation, so the first here), t shifts, R undoes a
    # counter-clockwise rotation, S shears, Z scales the sampling grid.
    fx = 1.0 - 2.0 * flip_h
    fy = 1.0 - 2.0 * flip_v
    cos, sin = ops.cos(theta), ops.sin(theta)
    # R = [[cos, -sin], [sin, cos]]; S = [[1, -sin(sh)], [0, cos(sh)]]; Z = diag(zx, zy)
    sr00 = cos - ops.sin(sh) * sin
    sr01 = -sin - ops.sin(sh) * cos
    sr10 = ops.cos(sh) * sin
    sr11 = ops.cos(sh) * cos
    a00, a01 = zoom_x * sr00, zoom_x * sr01
    a10, a11 = zoom_y * sr10, zoom_y * sr11
    tx = width_shift * w
    ty = height_shift * h
    # M = A F; input = M p + c - M c - A t
    m00, m01 = a00 * fx, a01 * fy
    m10, m11 = a10 * fx, a11 * fy
    off_x = cx - (m00 * cx + m01 * cy) - (a00 * tx + a01 * ty)
    off_y = cy - (m10 * cx + m11 * cy) - (a10 * tx + a11 * ty)
    # The crop comes first: a point q of the cropped-and-resized image samples the input at
    # box origin + (q + 1/2) * box size / image size - 1/2 (pixel centres, as PIL and TF resize).
    sx, sy = crop_width, crop_height
    ox = crop_left * w + 0.5 * sx - 0.5
    oy = crop_top * h + 0.5 * sy - 0.5
    zeros = ops.zeros_like(m00)
    return ops.stack([sx * m00, sx * m01, sx * off_x + ox, sy * m10, sy * m11, sy * off_y + oy, zeros, zeros],
                     axis=1)


def _transform(images, params, resampling: Resampling):
    """The geometry of every row (rotation, shifts, shear, zoom, flips) in one resampling."""
    if resampling.fill_mode == "wrap" and backend.name() != backend.TENSORFLOW:
        # Keras' other backends wrap with another period than TensorFlow's kernel
        raise ValueError(f"augment.fill_mode: wrap is computed as the manifests mean only under "
                         f"TensorFlow, not under KERAS_BACKEND={backend.name()}; use nearest, "
                         "reflect or constant")
    if backend.name() == backend.TENSORFLOW:
        # the sizes as tensors computed when the graph runs, not as constants of a traced graph,
        # whose optimisations would round the sampling differently from stores made before
        tf = backend.tensorflow()

        shape = tf.shape(images)
    else:
        shape = ops.shape(images)
    return ops.image.affine_transform(
        images,
        _sampling_transforms(params, shape[1], shape[2]),
        interpolation=resampling.interpolation,
        fill_mode=resampling.fill_mode,
        fill_value=resampling.cval,
        data_format="channels_last",
    )


def _shift_channels(images, channel_shift):
    """Add each row's shift to every channel, clipped per channel to the image's range; rows with
    a zero shift are left as they are."""
    lo = ops.min(images, axis=(1, 2), keepdims=True)
    hi = ops.max(images, axis=(1, 2), keepdims=True)
    shifted = ops.clip(images + channel_shift, lo, hi)
    return ops.where(channel_shift != 0.0, shifted, images)


def _brighten(images, brightness):
    """Multiply each row by its brightness factor, clipped to [0, 255]; rows of factor 1 are left."""
    brightened = ops.clip(images * brightness, 0.0, 255.0)
    return ops.where(brightness != 1.0, brightened, images)


def _grey(images):
    return ops.sum(images * ops.convert_to_tensor(GREY, "float32"), axis=-1, keepdims=True)


def _blend(images, other, factor):
    """factor * images + (1 - factor) * other, clipped to [0, 255] (torchvision's _blend)."""
    return ops.clip(factor * images + (1.0 - factor) * other, 0.0, 255.0)


def _contrast(images, factor):
    mean = ops.mean(_grey(images), axis=(1, 2, 3), keepdims=True)
    return ops.where(factor != 1.0, _blend(images, mean, factor), images)


def _saturation(images, factor):
    return ops.where(factor != 1.0, _blend(images, _grey(images), factor), images)


def _hue(images, shift):
    hsv = ops.image.rgb_to_hsv(images / 255.0, data_format="channels_last")
    hue = ops.mod(hsv[..., :1] + shift, 1.0)
    shifted = ops.image.hsv_to_rgb(ops.concatenate([hue, hsv[..., 1:]], axis=-1),
                                   data_format="channels_last") * 255.0
    return ops.where(shift != 0.0, shifted, images)


def _erase(images, params):
    """Set each row's box to its value; rows with an empty box are left as they are."""
    shape = ops.shape(images)
    height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")

    def column(name):
        return params[:, COLUMN[name]][:, None]

    # whole pixels: the boxes were drawn in pixels and stored as fractions
    top, height_px = ops.round(column("erase_top") * height), ops.round(column("erase_height") * height)
    left, width_px = ops.round(column("erase_left") * width), ops.round(column("erase_width") * width)
    rows = ops.cast(ops.arange(shape[1]), "float32")[None, :]
    cols = ops.cast(ops.arange(shape[2]), "float32")[None, :]
    in_rows = (rows >= top) & (rows < top + height_px)
    in_cols = (cols >= left) & (cols < left + width_px)
    inside = (in_rows[:, :, None] & in_cols[:, None, :])[..., None]
    value = column("erase_value")[:, :, None, None]
    return ops.where(inside, value, images)


def augment(images, params, resampling: Resampling = Resampling(), size: tuple[int, int] | None = None):
    """Apply one row of augmentation parameters to each image.

    images: (B, H, W, C) float32, pixel values in [0, 255] (a tensor of the Keras backend, or an array).
    params: (B, len(PARAM_COLUMNS)) float, columns as in ``PARAM_COLUMNS``.
    size: (height, width) of the result when it differs from (H, W) (pixels kept larger than the
        model input): the augmented images are then resized, bilinear with antialiasing.
    Returns (B, H, W, C) float32 (or size), a tensor of the backend. A row equal to
    ``IDENTITY_PARAMS`` returns the image unchanged.
    """
    images = ops.convert_to_tensor(images, "float32")
    params = ops.convert_to_tensor(params, "float32")
    # Each step runs only when some row of the batch needs it (val, noaug and prediction batches
    # need none); skipping a step gives exactly what running it on identity rows would.
    def column(name):
        return params[:, COLUMN[name]][:, None, None, None]

    def needed(name):
        return ops.any(column(name) != IDENTITY[name])

    geometry = ops.take(params, [COLUMN[name] for name in GEOMETRY_COLUMNS], axis=1)
    identity = ops.convert_to_tensor([IDENTITY[name] for name in GEOMETRY_COLUMNS], "float32")
    moved = ops.any(geometry != identity)
    out = ops.cond(moved, lambda: _transform(images, params, resampling), lambda: images)
    steps = (("channel_shift", _shift_channels), ("brightness", _brighten), ("contrast", _contrast),
             ("saturation", _saturation), ("hue", _hue))
    for name, step in steps:
        out = ops.cond(needed(name), lambda out=out, step=step, name=name: step(out, column(name)),
                       lambda out=out: out)
    erased = ops.any(params[:, COLUMN["erase_height"]] * params[:, COLUMN["erase_width"]] > 0)
    out = ops.cond(erased, lambda: _erase(out, params), lambda: out)
    if size is not None and tuple(images.shape[1:3]) != tuple(int(s) for s in size):
        out = ops.image.resize(out, [int(s) for s in size], interpolation="bilinear", antialias=True,
                               data_format="channels_last")
    return out
