import numpy as np
import pytest

from augcache.augmentation.augment import augment
from augcache.augmentation.params import IDENTITY_PARAMS, PARAM_COLUMNS, Resampling


def params(**values):
    row = dict(zip(PARAM_COLUMNS, IDENTITY_PARAMS))
    row.update(values)
    return np.array([[row[c] for c in PARAM_COLUMNS]], dtype=np.float32)


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (1, 9, 9, 3)).astype(np.float32)


def test_identity_params_return_the_image_unchanged(image):
    np.testing.assert_array_equal(augment(image, params()).numpy(), image)


def test_horizontal_and_vertical_flips_mirror_exactly(image):
    np.testing.assert_array_equal(augment(image, params(flip_horizontal=1.0)).numpy(), image[:, :, ::-1])
    np.testing.assert_array_equal(augment(image, params(flip_vertical=1.0)).numpy(), image[:, ::-1])


def test_rotation_is_counter_clockwise_in_degrees(image):
    rotated = augment(image, params(rotation=90.0)).numpy()
    np.testing.assert_allclose(rotated[0], np.rot90(image[0], k=1), atol=1e-3)


def test_width_shift_moves_content_right_by_fraction_of_width(image):
    shifted = augment(image, params(width_shift=2 / 9), Resampling("constant", cval=0.0)).numpy()
    np.testing.assert_allclose(shifted[:, :, 2:], image[:, :, :-2], atol=1e-3)
    assert np.all(shifted[:, :, :2] == 0.0)


def test_height_shift_moves_content_down(image):
    shifted = augment(image, params(height_shift=1 / 9), Resampling("constant", cval=7.0)).numpy()
    np.testing.assert_allclose(shifted[:, 1:], image[:, :-1], atol=1e-3)
    assert np.all(shifted[:, 0] == 7.0)


def test_zoom_below_one_magnifies_about_the_centre():
    image = np.zeros((1, 9, 9, 3), np.float32)
    image[0, 4, 6] = 255.0  # two pixels right of centre
    zoomed = augment(image, params(zoom_x=0.5, zoom_y=0.5), Resampling(interpolation="nearest")).numpy()
    # the output pixel 4 right of centre samples the input 2 right of centre
    assert zoomed[0, 4, 8, 0] == 255.0
    assert zoomed[0, 4, 6, 0] == 0.0


def test_brightness_multiplies_and_clips(image):
    out = augment(image, params(brightness=1.5)).numpy()
    np.testing.assert_allclose(out, np.clip(image * 1.5, 0, 255), rtol=1e-6)


def test_channel_shift_adds_and_clips_to_each_channels_range(image):
    out = augment(image, params(channel_shift=40.0)).numpy()
    hi = image.max(axis=(1, 2), keepdims=True)
    lo = image.min(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, np.clip(image + 40.0, lo, hi), rtol=1e-6)


def test_each_image_of_a_batch_gets_its_own_row(image):
    batch = np.concatenate([image, image])
    rows = np.concatenate([params(flip_horizontal=1.0), params()])
    out = augment(batch, rows).numpy()
    np.testing.assert_array_equal(out[0], image[0, :, ::-1])
    np.testing.assert_array_equal(out[1], image[0])


def test_bad_fill_mode_is_refused_with_its_key():
    with pytest.raises(ValueError, match="augment.fill_mode"):
        Resampling("mirror")


# sha256 of the augmented images below as the TensorFlow implementation of augcache 0.1.0 made them
# (compiled, as extraction runs it): the same pixels, so features stay byte-identical to its stores
GOLDEN_AUGMENTED_SHA256 = "2be98eeba13376342e17bebab052b9f80824ca0b5b671d6c21a4e6c3f77892fc"


def test_compiled_augmentation_gives_the_pixels_of_earlier_stores_byte_for_byte():
    import hashlib

    import tensorflow as tf

    from test_backends import varied_params

    images = np.random.default_rng(3).uniform(0, 255, (12, 40, 48, 3)).astype(np.float32)
    params = varied_params(12)
    digest = hashlib.sha256()
    signature = [tf.TensorSpec((None, 40, 48, 3), tf.float32), tf.TensorSpec((None, params.shape[1]), tf.float32)]
    for resampling in (Resampling("reflect"), Resampling("constant", 7.0, "nearest")):
        for size in (None, (32, 36)):
            step = tf.function(lambda x, y, r=resampling, s=size: augment(x, y, r, s), input_signature=signature)
            digest.update(step(images, params).numpy().tobytes())
    assert digest.hexdigest() == GOLDEN_AUGMENTED_SHA256
