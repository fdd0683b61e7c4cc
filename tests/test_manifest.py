import numpy as np
import pandas as pd
import pytest

from augcache.augmentation.params import PARAM_COLUMNS
from augcache.augmentation.manifest import (AugmentConfig, build_manifest, draw_params, params_array,
                               read_manifest, write_manifest)

AUG = AugmentConfig.from_config({
    "rotation_range": 30, "width_shift_range": 0.2, "height_shift_range": 0.1, "shear_range": 10,
    "zoom_range": [0.8, 1.25], "horizontal_flip": True, "vertical_flip": True,
    "brightness_range": [0.7, 1.3], "channel_shift_range": 20,
})


def samples(n=50):
    return pd.DataFrame({
        "sample_id": [f"c{i % 3}/img_{i:03d}.png" for i in range(n)],
        "path": [f"/data/c{i % 3}/img_{i:03d}.png" for i in range(n)],
        "label": [f"c{i % 3}" for i in range(n)],
        "label_index": [i % 3 for i in range(n)],
    })


def test_epoch_params_depend_only_on_seed_and_epoch():
    a_order, a = draw_params(AUG, 50, seed=1, epoch=4)
    b_order, b = draw_params(AUG, 50, seed=1, epoch=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a_order, b_order)
    _, other_epoch = draw_params(AUG, 50, seed=1, epoch=5)
    _, other_seed = draw_params(AUG, 50, seed=2, epoch=4)
    assert not np.array_equal(a, other_epoch)
    assert not np.array_equal(a, other_seed)


def test_params_stay_inside_their_ranges():
    order, p = draw_params(AUG, 2000, seed=0, epoch=0)
    assert sorted(order) == list(range(2000))
    col = dict(zip(PARAM_COLUMNS, p.T))
    assert np.abs(col["rotation"]).max() <= 30 and np.abs(col["rotation"]).max() > 25
    assert np.abs(col["width_shift"]).max() <= 0.2
    assert col["zoom_x"].min() >= 0.8 and col["zoom_y"].max() <= 1.25
    assert set(col["flip_horizontal"]) == {0.0, 1.0}
    assert 0.4 < col["flip_horizontal"].mean() < 0.6
    assert col["brightness"].min() >= 0.7 and col["brightness"].max() <= 1.3


def test_switching_an_option_off_leaves_the_other_columns_unchanged():
    no_rotation = AugmentConfig.from_config({**AUG.to_dict(), "rotation_range": 0})
    _, a = draw_params(AUG, 100, seed=0, epoch=2)
    _, b = draw_params(no_rotation, 100, seed=0, epoch=2)
    assert np.all(b[:, 0] == 0.0)
    np.testing.assert_array_equal(a[:, 1:], b[:, 1:])


def test_manifest_floats_read_back_bit_identical(tmp_path):
    table = build_manifest(samples(), AUG, seed=0, epoch=1)
    path = tmp_path / "epoch_1.csv"
    write_manifest(table, path)
    back = read_manifest(path)
    assert params_array(back).tobytes() == params_array(table).tobytes()
    assert back["sample_id"].tolist() == table["sample_id"].tolist()


def test_manifest_rows_follow_the_shuffle_order_and_carry_each_samples_own_params():
    table = build_manifest(samples(), AUG, seed=0, epoch=0)
    order, p = draw_params(AUG, 50, seed=0, epoch=0)
    sorted_ids = sorted(samples()["sample_id"])
    assert table["position"].tolist() == list(range(50))
    assert table["sample_id"].tolist() == [sorted_ids[i] for i in order]
    np.testing.assert_array_equal(params_array(table), p[order])


def test_manifest_does_not_depend_on_the_order_of_the_index():
    shuffled = samples().sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(build_manifest(samples(), AUG, 0, 0), build_manifest(shuffled, AUG, 0, 0))


def test_zoom_range_follows_keras_float_convention():
    assert AugmentConfig.from_config({"zoom_range": 0.2}).zoom_range == (0.8, 1.2)
    with pytest.raises(ValueError, match="augment.zoom_range"):
        AugmentConfig.from_config({"zoom_range": [1.2, 0.8]})


def test_manifest_missing_a_column_is_refused_with_its_name(tmp_path):
    path = tmp_path / "m.csv"
    build_manifest(samples(), AUG, 0, 0).drop(columns=["shear"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="shear"):
        read_manifest(path)


def test_manifest_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, augcache.augmentation.manifest, augcache.data.dataset, augcache.data.pixels; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_shard_reads_only_its_rows_of_the_manifest(tmp_path):
    from augcache.augmentation.manifest import AugmentConfig, build_manifest, manifest_rows, read_manifest, write_manifest

    train = pd.DataFrame({"sample_id": [f"s{i:03d}" for i in range(37)], "path": [f"p{i}" for i in range(37)],
                          "label": ["a", "b"] * 18 + ["a"], "label_index": [0, 1] * 18 + [0]})
    table = build_manifest(train, AugmentConfig(rotation_range=20, horizontal_flip=True), seed=1, epoch=0)
    write_manifest(table, tmp_path / "m.csv")
    whole = read_manifest(tmp_path / "m.csv")
    assert manifest_rows(tmp_path / "m.csv") == 37
    for start, stop in ((0, 8), (8, 16), (32, 37), (37, 37)):
        part = read_manifest(tmp_path / "m.csv", (start, stop))
        pd.testing.assert_frame_equal(part, whole.iloc[start:stop].reset_index(drop=True), check_exact=True)


def test_a_training_manifest_keeps_its_bytes(tmp_path):
    """The training epochs' stream is the original one: a manifest written today has the bytes it
    had when its golden hash was taken (with crops and erasing, which need the size, too)."""
    import hashlib

    modern = AugmentConfig.from_config({"rotation_range": 30, "crop_scale": [0.5, 1.0], "erasing_probability": 0.5,
                                        "contrast_range": 0.2, "hue_range": 0.1, "horizontal_flip": True})
    digests = []
    for aug, size in ((AUG, None), (modern, (32, 40))):
        write_manifest(build_manifest(samples(), aug, seed=3, epoch=2, size=size), tmp_path / "m.csv")
        digests.append(hashlib.sha256((tmp_path / "m.csv").read_bytes()).hexdigest())
    assert digests == GOLDEN_MANIFEST_SHA256


# taken before the random streams were given spawn keys: the training epochs' stream is unchanged
GOLDEN_MANIFEST_SHA256 = ["f58dc76c955b9c7293b6f102002f9fab750f706c284433a686db8d3f6b9b8092",
                          "05c52aad2e53281fa16eeb2eb7960f62a66c23f9211dc6287680c6789f6a4816"]


def test_every_random_stream_is_its_own():
    """Training epochs, the split, test-time views of each image, feature-space augmentation and
    fold splits each draw from a SeedSequence of their own: for a few seeds, no two streams give
    the same numbers (view 0 of an image once shared training epoch 7's)."""
    from augcache.augmentation.manifest import MAX_EPOCH, id_words, seed_sequence

    for seed in (0, 1, 7, 2024):
        streams = {f"epoch {e}": seed_sequence(seed, "epoch", e) for e in (*range(12), MAX_EPOCH - 1)}
        streams["split"] = seed_sequence(seed, "split")
        streams |= {f"view {v} of {name}": seed_sequence(seed, "view", v, *id_words(name))
                    for v in range(4) for name in ("a.png", "b.png", "")}
        streams |= {f"feature augmentation {n}": seed_sequence(seed, "feature_augment", n) for n in range(12)}
        streams["folds"] = seed_sequence(seed, "folds")
        first = {name: tuple(np.random.default_rng(sequence).integers(0, 2**63, 4)) for name, sequence in streams.items()}
        assert len(set(first.values())) == len(first), seed
    # the old spelling of the views' stream shows what the spawn keys avoid
    assert np.random.SeedSequence([5, 7, 0]).generate_state(4).tolist() == \
        np.random.SeedSequence([5, 7]).generate_state(4).tolist()
    with pytest.raises(ValueError, match="epoch"):
        seed_sequence(0, "epoch", MAX_EPOCH)


def test_an_images_test_time_views_do_not_depend_on_the_other_images():
    from augcache.augmentation.manifest import view_manifest

    table = samples(20)
    alone = view_manifest(table.iloc[[7]], AUG, seed=4, view=1)
    among = view_manifest(table, AUG, seed=4, view=1).set_index("sample_id").loc[[table["sample_id"][7]]]
    np.testing.assert_array_equal(params_array(alone), params_array(among.reset_index()))
    other_view = view_manifest(table.iloc[[7]], AUG, seed=4, view=2)
    assert not np.array_equal(params_array(alone), params_array(other_view))
