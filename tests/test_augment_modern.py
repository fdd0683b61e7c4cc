"""Random resized crop, colour jitter and random erasing: each against its reference definition
(PIL for resampling, torchvision's formulas and sampling procedure written out here), each an
identity when off, and each a family of manifest columns that never moves another's numbers."""

import colorsys
import math

import numpy as np
import pytest
from PIL import Image

from augcache.augmentation.aliases import canonical_augment
from augcache.augmentation.augment import augment
from augcache.augmentation.manifest import AugmentConfig, _boxes, draw_params
from augcache.augmentation.params import COLUMN, IDENTITY_PARAMS, PARAM_COLUMNS, Resampling
from test_augment import params as row

H, W = 24, 32
CROP = ("crop_top", "crop_left", "crop_height", "crop_width")
JITTER = ("contrast", "saturation", "hue")
ERASE = ("erase_top", "erase_left", "erase_height", "erase_width", "erase_value")


@pytest.fixture
def image():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (H, W, 3)).astype(np.uint8)


def crop_row(top, left, height, width):
    return row(crop_top=top / H, crop_left=left / W, crop_height=height / H, crop_width=width / W)


@pytest.mark.parametrize("box", [(0, 0, H, W), (3, 5, 12, 20), (10, 1, 14, 9), (0, 16, 7, 16), (5, 0, 19, 32)])
def test_crop_with_nearest_equals_pil_crop_and_resize_exactly(image, box):
    top, left, height, width = box
    reference = np.asarray(Image.fromarray(image).resize((W, H), Image.NEAREST,
                                                         box=(left, top, left + width, top + height)))
    cropped = augment(image[None].astype(np.float32), crop_row(*box), Resampling(interpolation="nearest"))
    np.testing.assert_array_equal(cropped.numpy()[0], reference)


@pytest.mark.parametrize("box", [(3, 5, 12, 20), (10, 1, 14, 9)])
def test_crop_with_bilinear_matches_pil_bilinear_upscaling(image, box):
    top, left, height, width = box
    reference = np.asarray(Image.fromarray(image).resize((W, H), Image.BILINEAR,
                                                         box=(left, top, left + width, top + height)))
    cropped = augment(image[None].astype(np.float32), crop_row(*box)).numpy()[0]
    # inside the image, PIL and the projective transform interpolate alike (PIL rounds to uint8)
    inner = (slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(cropped[inner], reference[inner], atol=1.01)


def torchvision_crop_box(rng_values, height, width, scale, ratio):
    """RandomResizedCrop.get_params, line by line, on given uniform numbers."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for t in range(10):
        target_area = area * (scale[0] + rng_values[2 * t] * (scale[1] - scale[0]))
        aspect_ratio = math.exp(log_ratio[0] + rng_values[2 * t + 1] * (log_ratio[1] - log_ratio[0]))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = int(rng_values[-2] * (height - h + 1))
            j = int(rng_values[-1] * (width - w + 1))
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


def torchvision_erase_box(rng_values, height, width, scale, ratio):
    """RandomErasing.get_params, line by line; (0, 0, 0, 0) where torchvision erases nothing."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for t in range(10):
        erase_area = area * (scale[0] + rng_values[2 * t] * (scale[1] - scale[0]))
        aspect_ratio = math.exp(log_ratio[0] + rng_values[2 * t + 1] * (log_ratio[1] - log_ratio[0]))
        h = int(round(math.sqrt(erase_area * aspect_ratio)))
        w = int(round(math.sqrt(erase_area / aspect_ratio)))
        if not (h < height and w < width):
            continue
        return int(rng_values[-2] * (height - h + 1)), int(rng_values[-1] * (width - w + 1)), h, w
    return 0, 0, 0, 0


@pytest.mark.parametrize("scale, ratio", [((0.08, 1.0), (3 / 4, 4 / 3)), ((0.9, 1.0), (2.0, 3.0)),
                                          ((1.0, 1.0), (0.2, 0.3))])
def test_crop_boxes_follow_torchvision_sampling_including_the_centre_fallback(scale, ratio):
    u = np.random.default_rng(0).random((300, 22))
    boxes = _boxes(u, (H, W), scale, ratio, erasing=False)
    expected = [torchvision_crop_box(list(v), H, W, scale, ratio) for v in u]
    np.testing.assert_array_equal(boxes, np.array(expected, dtype=np.float64))


def test_erasing_boxes_follow_torchvision_sampling():
    u = np.random.default_rng(1).random((300, 22))
    scale, ratio = (0.02, 0.6), (0.3, 3.3)
    boxes = _boxes(u, (H, W), scale, ratio, erasing=True)
    expected = [torchvision_erase_box(list(v), H, W, scale, ratio) for v in u]
    np.testing.assert_array_equal(boxes, np.array(expected, dtype=np.float64))


def grey(x):
    return 0.2989 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def test_contrast_and_saturation_blend_as_torchvision(image):
    x = image.astype(np.float64)
    for factor in (0.3, 1.7):
        expected = np.clip(factor * x + (1 - factor) * grey(x).mean(), 0, 255)
        got = augment(image[None].astype(np.float32), row(contrast=factor)).numpy()[0]
        np.testing.assert_allclose(got, expected, atol=1e-3)
        expected = np.clip(factor * x + (1 - factor) * grey(x)[..., None], 0, 255)
        got = augment(image[None].astype(np.float32), row(saturation=factor)).numpy()[0]
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_hue_shift_rotates_the_hue_in_turns(image):
    shift = 0.23
    expected = np.empty((H, W, 3))
    for y in range(H):
        for x in range(W):
            h, s, v = colorsys.rgb_to_hsv(*(image[y, x] / 255.0))
            expected[y, x] = np.array(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)) * 255.0
    got = augment(image[None].astype(np.float32), row(hue=shift)).numpy()[0]
    np.testing.assert_allclose(got, expected, atol=0.05)


def test_erasing_sets_exactly_its_box(image):
    top, left, height, width, value = 4, 7, 9, 13, 128.0
    expected = image.astype(np.float32).copy()
    expected[top:top + height, left:left + width] = value
    got = augment(image[None].astype(np.float32),
                  row(erase_top=top / H, erase_left=left / W, erase_height=height / H, erase_width=width / W,
                      erase_value=value)).numpy()[0]
    np.testing.assert_array_equal(got, expected)


def test_a_batch_mixing_every_family_applies_each_row_its_own(image):
    rows = np.concatenate([row(), crop_row(3, 5, 12, 20), row(contrast=0.5), row(hue=0.1),
                           row(erase_height=0.5, erase_width=0.5, erase_value=7.0)])
    batch = np.repeat(image[None].astype(np.float32), len(rows), axis=0)
    together = augment(batch, rows).numpy()
    for i in range(len(rows)):
        alone = augment(batch[i:i + 1], rows[i:i + 1]).numpy()[0]
        np.testing.assert_allclose(together[i], alone, atol=1e-4)
    np.testing.assert_array_equal(together[0], batch[0])


FAMILIES = {
    "crop": ({"crop_scale": (0.08, 1.0)}, CROP),
    "jitter": ({"contrast_range": (0.6, 1.4), "saturation_range": (0.5, 1.5), "hue_range": (-0.1, 0.1)}, JITTER),
    "erasing": ({"erasing_probability": 0.5, "erasing_value": 9.0}, ERASE),
    "classic": ({"rotation_range": 20.0, "zoom_range": (0.8, 1.2), "horizontal_flip": True}, PARAM_COLUMNS[:10]),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_switching_a_family_on_moves_no_other_column(family):
    settings, columns = FAMILIES[family]
    everything_else = {k: v for name, (s, _) in FAMILIES.items() if name != family for k, v in s.items()}
    off = AugmentConfig(**everything_else)
    on = AugmentConfig(**everything_else, **settings)
    order_off, p_off = draw_params(off, 200, seed=5, epoch=3, size=(H, W))
    order_on, p_on = draw_params(on, 200, seed=5, epoch=3, size=(H, W))
    np.testing.assert_array_equal(order_off, order_on)
    changed = [c for c in PARAM_COLUMNS if not np.array_equal(p_off[:, COLUMN[c]], p_on[:, COLUMN[c]])]
    assert changed and set(changed) <= set(columns), changed
    identity = np.asarray(IDENTITY_PARAMS)
    np.testing.assert_array_equal(p_off[:, [COLUMN[c] for c in columns]],
                                  np.tile(identity[[COLUMN[c] for c in columns]], (200, 1)))


def test_drawn_boxes_are_whole_pixels_inside_the_image():
    aug = AugmentConfig(crop_scale=(0.08, 1.0), erasing_probability=1.0)
    _, p = draw_params(aug, 500, seed=0, epoch=0, size=(H, W))
    for names in (CROP, ERASE[:4]):
        top, left, height, width = (p[:, COLUMN[n]] * s for n, s in zip(names, (H, W, H, W)))
        for v in (top, left, height, width):
            np.testing.assert_allclose(v, np.rint(v), atol=1e-9)
        assert np.all(top >= 0) and np.all(top + height <= H + 1e-9)
        assert np.all(left >= 0) and np.all(left + width <= W + 1e-9)
    crop_area = p[:, COLUMN["crop_height"]] * p[:, COLUMN["crop_width"]]
    assert crop_area.min() < 0.3 and crop_area.max() <= 1.0


def test_crop_and_erasing_need_the_image_size():
    with pytest.raises(ValueError, match="image size"):
        draw_params(AugmentConfig(crop_scale=(0.5, 1.0)), 4, seed=0, epoch=0)


def test_jitter_ranges_follow_torchvision_conventions():
    aug = AugmentConfig.from_config({"contrast_range": 0.4, "saturation_range": 1.5, "hue_range": 0.1})
    assert aug.contrast_range == (0.6, 1.4)
    assert aug.saturation_range == (0.0, 2.5)  # max(0, 1 - x)
    assert aug.hue_range == (-0.1, 0.1)
    with pytest.raises(ValueError, match="augment.hue_range"):
        AugmentConfig.from_config({"hue_range": [-0.7, 0.1]})


def test_keras_layer_spellings_become_the_canonical_keys_with_a_note():
    section, notes = canonical_augment({"RandomFlip": "horizontal", "RandomRotation": 0.1,
                                        "RandomTranslation": {"height_factor": 0.2, "width_factor": 0.1},
                                        "RandomZoom": {"height_factor": [-0.2, 0.3], "width_factor": [-0.2, 0.3]}})
    assert section == {"horizontal_flip": True, "vertical_flip": False, "rotation_range": pytest.approx(36.0),
                       "height_shift_range": 0.2, "width_shift_range": 0.1, "zoom_range": [0.8, 1.3]}
    assert len(notes) == 4 and all("read as" in n for n in notes)
    assert AugmentConfig.from_config({"RandomZoom": [0.1, 0.1]}).zoom_range == (0.9, 1.1)


def test_an_overlay_sets_its_keys_over_layer_spellings(tmp_path):
    """eval.tta_augment, a variant's augment and a config overlay switch off what a layer spelling of
    augment set, with a key set back to its default."""
    import yaml
    from snakemake.utils import validate

    from augcache.jobs.settings import SCHEMA, Settings, load_config

    spelled = {"RandomFlip": "horizontal", "RandomRotation": 0.1}
    off = {"rotation_range": 0, "horizontal_flip": False}
    config = {"data": {"dir": str(tmp_path)}, "augment": spelled, "eval": {"tta_augment": off},
              "variants": {"still": {"augment": off}}}
    validate(config, str(SCHEMA), set_default=True)
    settings = Settings(config)
    for section in (settings.tta_params()["augment"], settings.variant("still").config["augment"]):
        aug = AugmentConfig.from_config(section)
        assert aug.rotation_range == 0 and not aug.horizontal_flip, section
    # what the overlay leaves alone keeps the spelling's meaning
    assert AugmentConfig.from_config(settings.variant("still").config["augment"]).vertical_flip is False
    files = [tmp_path / "config.yaml", tmp_path / "over.yaml"]
    files[0].write_text(yaml.safe_dump({"data": {"dir": str(tmp_path)}, "augment": spelled}))
    files[1].write_text(yaml.safe_dump({"augment": off}))
    aug = AugmentConfig.from_config(load_config(files)["augment"])
    assert aug.rotation_range == 0 and not aug.horizontal_flip
    # without an overlay, the spelling holds
    assert AugmentConfig.from_config(load_config(files[:1])["augment"]).rotation_range == pytest.approx(36.0)


@pytest.mark.parametrize("section, message", [
    ({"RandomRotation": [-0.1, 0.2]}, "not symmetric"),
    ({"RandomZoom": 0.2}, "keeping the aspect ratio"),
    ({"RandomZoom": {"height_factor": 0.2, "width_factor": 0.3}}, "differ"),
    ({"RandomFlip": "sideways"}, "RandomFlip: mode 'sideways'"),
    ({"RandomRotation": 0.1, "rotation_range": 10}, "both RandomRotation and rotation_range"),
])
def test_keras_spellings_without_a_meaning_here_are_refused(section, message):
    with pytest.raises(ValueError, match=message):
        canonical_augment(section)


def test_identity_row_is_still_the_identity_with_every_interpolation(image):
    for interpolation in ("bilinear", "nearest"):
        out = augment(image[None].astype(np.float32), row(), Resampling(interpolation=interpolation)).numpy()
        np.testing.assert_array_equal(out[0], image)
