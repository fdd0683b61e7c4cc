"""Feature-space augmentation: seeded numbers, one transform function, spatial and pointwise."""

import numpy as np
import pandas as pd
import pytest

from augcache.augmentation.feature_augment import (
    FEATURE_PARAM_COLUMNS,
    FeatureAugmentConfig,
    FeatureAugmented,
    augment_features,
    draw_feature_params,
)

OFF = FeatureAugmentConfig(brightness=0, contrast=0, posterize_bits=0, per_channel=False, flip=False, crop=0)
EVERYTHING = FeatureAugmentConfig(brightness=0.2, contrast=0.3, posterize_bits=3, per_channel=True, flip=True,
                                  crop=0.5)


def features(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_numbers_depend_only_on_seed_and_head_epoch():
    first = draw_feature_params(EVERYTHING, 20, seed=4, head_epoch=3, map_size=(5, 5))
    again = draw_feature_params(EVERYTHING, 20, seed=4, head_epoch=3, map_size=(5, 5))
    other = draw_feature_params(EVERYTHING, 20, seed=4, head_epoch=4, map_size=(5, 5))
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == list(FEATURE_PARAM_COLUMNS)
    assert not np.allclose(first["brightness"], other["brightness"])
    assert (first["head_epoch"] == 3).all() and list(first["position"]) == list(range(20))
    assert first["brightness"].abs().max() <= 0.2 and first["brightness"].abs().max() > 0
    assert set(first["flip"]) == {0, 1}
    assert first["posterize_bits"].between(3, 8).all()
    assert (first["crop_height"] >= 2).all() and (first["crop_top"] + first["crop_height"] <= 5).all()
    assert (first["crop_left"] + first["crop_width"] <= 5).all()


def test_transforms_that_are_off_change_nothing():
    x = features((6, 4, 4, 8))
    rows = draw_feature_params(OFF, 6, seed=0, head_epoch=0, map_size=(4, 4))
    np.testing.assert_allclose(augment_features(x, rows, OFF), x, rtol=0, atol=1e-6)


def test_brightness_shifts_by_a_share_of_each_samples_range():
    cfg = FeatureAugmentConfig(brightness=0.3, per_channel=False)
    x = features((5, 16))
    rows = draw_feature_params(cfg, 5, seed=1, head_epoch=2)
    out = augment_features(x, rows, cfg)
    span = x.max(axis=1) - x.min(axis=1)
    want = np.broadcast_to((rows["brightness"].to_numpy() * span)[:, None], x.shape)
    np.testing.assert_allclose(out - x, want, atol=1e-5)


def test_per_channel_draws_differ_between_channels_and_are_reproducible():
    cfg = FeatureAugmentConfig(brightness=0.3, per_channel=True)
    x = features((3, 32))
    rows = draw_feature_params(cfg, 3, seed=1, head_epoch=0)
    shift = augment_features(x, rows, cfg) - x
    assert np.unique(np.round(shift[0], 5)).size > 16
    np.testing.assert_array_equal(augment_features(x, rows, cfg), augment_features(x, rows, cfg))


def test_posterize_leaves_at_most_two_to_the_bits_levels():
    cfg = FeatureAugmentConfig(brightness=0, posterize_bits=2, per_channel=False)
    x = features((4, 200))
    rows = draw_feature_params(cfg, 4, seed=0, head_epoch=0)
    rows["posterize_bits"] = 2
    out = augment_features(x, rows, cfg)
    assert all(np.unique(sample).size <= 4 for sample in out)


def test_flip_and_crop_move_cells_of_a_spatial_map():
    x = features((2, 4, 6, 3))
    rows = draw_feature_params(OFF, 2, seed=0, head_epoch=0, map_size=(4, 6))
    rows["flip"] = [1, 0]
    rows.loc[1, ["crop_top", "crop_left", "crop_height", "crop_width"]] = [1, 2, 1, 1]
    out = augment_features(x, rows, OFF)
    np.testing.assert_allclose(out[0], x[0][:, ::-1], atol=1e-6)
    np.testing.assert_allclose(out[1], np.broadcast_to(x[1, 1, 2], (4, 6, 3)), atol=1e-6)


def test_a_sample_is_transformed_alike_whatever_its_batch_mates():
    x = features((8, 3, 3, 4))
    rows = draw_feature_params(EVERYTHING, 8, seed=2, head_epoch=5, map_size=(3, 3))
    together = augment_features(x, rows, EVERYTHING)
    alone = np.concatenate([augment_features(x[i:i + 1], rows.iloc[i:i + 1], EVERYTHING) for i in range(8)])
    np.testing.assert_array_equal(together, alone)


def test_spatial_transforms_on_vectors_are_refused_naming_the_keys():
    with pytest.raises(ValueError, match=r"feature_augment.flip .* shape \(16,\).*conv_base.pooling"):
        FeatureAugmented(lambda n: ([], 0.0), FeatureAugmentConfig(flip=True), 0, 4, (16,))


def test_config_ranges_are_checked():
    with pytest.raises(ValueError, match="feature_augment.crop"):
        FeatureAugmentConfig.from_config({"crop": 1.0})


def test_a_source_is_augmented_position_by_position_across_blocks(tmp_path):
    x, y = features((10, 2, 2, 3)), np.arange(10)
    whole = FeatureAugmented(lambda n: ([(x, y)], 0.5), EVERYTHING, 7, 10, (2, 2, 3))
    split = FeatureAugmented(lambda n: ([(x[:4], y[:4]), (x[4:], y[4:])], 0.5), EVERYTHING, 7, 10, (2, 2, 3))
    for n in (0, 1):
        blocks, seconds = whole(n)
        one = np.concatenate([b for b, _ in blocks])
        blocks, _ = split(n)
        two = np.concatenate([b for b, _ in blocks])
        np.testing.assert_array_equal(one, two)
        assert seconds == 0.5
    whole.write(tmp_path / "drawn.csv.gz")
    table = pd.read_csv(tmp_path / "drawn.csv.gz")
    pd.testing.assert_frame_equal(table, pd.concat([draw_feature_params(EVERYTHING, 10, 7, n, (2, 2)) for n in (0, 1)],
                                                   ignore_index=True))
    assert not np.allclose(one, x)
