"""Reading images from disk into float32 RGB arrays of one size, in TensorFlow ops."""

from __future__ import annotations

import tensorflow as tf


def load_image(path: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Decode one file (JPEG, PNG, BMP, GIF first frame) to (H, W, 3) float32 in [0, 255].

    The image is stretched to ``size`` = (height, width) with bilinear resizing, as
    ImageDataGenerator's ``target_size`` does.
    """
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    return tf.clip_by_value(image, 0.0, 255.0)


def load_images(paths, size: tuple[int, int]) -> tf.Tensor:
    """(N, H, W, 3) float32 stack of :func:`load_image` for a list of paths."""
    return tf.stack([load_image(tf.constant(str(p)), size) for p in paths])
