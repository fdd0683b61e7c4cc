"""The augmentation function: ``augment(images, params) -> images``, in TensorFlow ops.

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
=================  ======================================================================

Order of operations as in ``ImageDataGenerator.apply_transform``: geometry (one projective
resampling that includes the flips), then channel shift, then brightness.
"""

from __future__ import annotations

import math

import tensorflow as tf

# The parameter columns and resampling settings live in a module without TensorFlow (manifests use them).
from augcache.params import FILL_MODES, IDENTITY_PARAMS, INTERPOLATIONS, PARAM_COLUMNS, Resampling  # noqa: F401


def _sampling_transforms(params: tf.Tensor, height, width) -> tf.Tensor:
    """(B, 10) params -> (B, 8) output-to-input maps for ImageProjectiveTransformV3."""
    p = tf.unstack(tf.cast(params, tf.float32), axis=1)
    rotation, width_shift, height_shift, shear, zoom_x, zoom_y, flip_h, flip_v = p[:8]
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    cx = (w - 1.0) / 2.0
    cy = (h - 1.0) / 2.0
    theta = rotation * (math.pi / 180.0)
    sh = shear * (math.pi / 180.0)
    # Output point p (column x, row y) samples the input at c + Z S R (F (p - c) - t):
    # F flips (the last image operation, so the first here), t shifts, R undoes a
    # counter-clockwise rotation, S shears, Z scales the sampling grid.
    fx = 1.0 - 2.0 * flip_h
    fy = 1.0 - 2.0 * flip_v
    cos, sin = tf.cos(theta), tf.sin(theta)
    # R = [[cos, -sin], [sin, cos]]; S = [[1, -sin(sh)], [0, cos(sh)]]; Z = diag(zx, zy)
    sr00 = cos - tf.sin(sh) * sin
    sr01 = -sin - tf.sin(sh) * cos
    sr10 = tf.cos(sh) * sin
    sr11 = tf.cos(sh) * cos
    a00, a01 = zoom_x * sr00, zoom_x * sr01
    a10, a11 = zoom_y * sr10, zoom_y * sr11
    tx = width_shift * w
    ty = height_shift * h
    # M = A F; input = M p + c - M c - A t
    m00, m01 = a00 * fx, a01 * fy
    m10, m11 = a10 * fx, a11 * fy
    off_x = cx - (m00 * cx + m01 * cy) - (a00 * tx + a01 * ty)
    off_y = cy - (m10 * cx + m11 * cy) - (a10 * tx + a11 * ty)
    zeros = tf.zeros_like(m00)
    return tf.stack([m00, m01, off_x, m10, m11, off_y, zeros, zeros], axis=1)


def _transform(images, params, resampling: Resampling):
    """The geometry of every row (rotation, shifts, shear, zoom, flips) in one resampling."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=_sampling_transforms(params, height, width),
        output_shape=tf.stack([height, width]),
        fill_value=tf.constant(resampling.cval, tf.float32),
        interpolation=resampling.interpolation.upper(),
        fill_mode=resampling.fill_mode.upper(),
    )


def _shift_channels(images, channel_shift):
    """Add each row's shift to every channel, clipped per channel to the image's range; rows with
    a zero shift are left as they are."""
    lo = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    shifted = tf.clip_by_value(images + channel_shift, lo, hi)
    return tf.where(channel_shift != 0.0, shifted, images)


def _brighten(images, brightness):
    """Multiply each row by its brightness factor, clipped to [0, 255]; rows of factor 1 are left."""
    brightened = tf.clip_by_value(images * brightness, 0.0, 255.0)
    return tf.where(brightness != 1.0, brightened, images)


def augment(images: tf.Tensor, params: tf.Tensor, resampling: Resampling = Resampling(),
            size: tuple[int, int] | None = None) -> tf.Tensor:
    """Apply one row of augmentation parameters to each image.

    images: (B, H, W, C) float32, pixel values in [0, 255].
    params: (B, 10) float, columns as in ``PARAM_COLUMNS``.
    size: (height, width) of the result when it differs from (H, W) (pixels kept larger than the
        model input): the augmented images are then resized, bilinear with antialiasing.
    Returns (B, H, W, C) float32 (or size). A row equal to ``IDENTITY_PARAMS`` returns the image
    unchanged.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    params = tf.convert_to_tensor(params, tf.float32)
    # Each step runs only when some row of the batch needs it (val, noaug and prediction batches
    # need none); skipping a step gives exactly what running it on identity rows would.
    geometry = params[:, :8]
    moved = tf.reduce_any(geometry != tf.constant(IDENTITY_PARAMS[:8], tf.float32))
    out = tf.cond(moved, lambda: _transform(images, params, resampling), lambda: images)
    channel_shift = params[:, 9][:, None, None, None]
    out = tf.cond(tf.reduce_any(channel_shift != 0.0), lambda: _shift_channels(out, channel_shift), lambda: out)
    brightness = params[:, 8][:, None, None, None]
    out = tf.cond(tf.reduce_any(brightness != 1.0), lambda: _brighten(out, brightness), lambda: out)
    if size is not None and tuple(images.shape[1:3]) != tuple(int(s) for s in size):
        out = tf.image.resize(out, [int(s) for s in size], method="bilinear", antialias=True)
    return out
