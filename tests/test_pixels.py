"""The pixel store: each image decoded once, read by every extraction, refused when damaged or foreign."""

import hashlib
import os

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augcache.core.atomic import csv_text
from augcache.core.provenance import ProvenanceError
from augcache.data.dataset import build_index, read_index
from augcache.data.images import decode_file, load_pixels, resize_pixels
from augcache.data.pixels import PixelStore, PixelWriter, index_with_pixel_store, open_pixels
from augcache.store.writer import StoreError
from conftest import Workflow, make_image_folder


def photo(path, height=600, width=800, orientation=None, seed=0):
    """A smooth JPEG 'photo' with some texture, optionally with an EXIF orientation."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([np.sin(x / 37.0) * 100 + 128, np.cos(y / 23.0) * 100 + 128, (x + 2 * y) % 256], -1)
    pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
    extra = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif
    Image.fromarray(pixels).save(path, quality=92, **extra)
    return path


def test_large_jpeg_decodes_at_a_reduced_scale_that_keeps_twice_the_target(tmp_path):
    path = photo(tmp_path / "big.jpg")
    assert decode_file(path, at_least=(64, 64)).shape == (75, 100, 3)  # 1/8 scale keeps >= 64 px
    assert decode_file(path, at_least=(200, 200)).shape == (300, 400, 3)  # 1/4 would give 150 < 200
    assert decode_file(path, at_least=(400, 400)).shape == (600, 800, 3)
    full = resize_pixels(decode_file(path), (32, 32))
    fast = load_pixels(path, (32, 32))
    assert fast.dtype == np.uint8 and fast.shape == (32, 32, 3)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 2.0


def test_reduced_scale_follows_the_exif_orientation(tmp_path):
    path = photo(tmp_path / "turned.jpg", orientation=6)  # stored 800 wide, shown 800 high
    image = decode_file(path, at_least=(200, 100))
    # 1/4 scale shows 200 high and 150 wide: enough. Read in stored orientation (600 high), 1/4
    # would look too small (150 < 200) and the decode would stop at 1/2.
    assert image.shape == (200, 150, 3)
    assert load_pixels(path, (64, 32)).shape == (64, 32, 3)


def write_store(path, images, ids, attrs=None):
    with PixelWriter(path, len(images) + 2, images.shape[1:3], attrs or {"resize": "stretch"}) as writer:
        writer.write(images[:3], ids[:3])
        writer.write(images[3:], ids[3:])
        writer.attrs_at_close["index_sha256"] = "x"


@pytest.mark.parametrize("ids", [["s0", "s1", "s2", "s3", "s4形"], ["s3", "s1", "s0", "s4形", "s2"]],
                         ids=["in order", "out of order"])
def test_pixel_store_rows_are_read_back_by_sample_id(tmp_path, ids):
    """Ids in order (as the index writes them) are found by binary search, others by a mapping:
    the same rows either way, and a missing id is named wherever it would fall."""
    images = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    write_store(tmp_path / "pixels.h5", images, ids)
    store = PixelStore(tmp_path / "pixels.h5", size=(6, 7), resize="stretch")
    wanted = ["s4形", "s0", "s2"]
    rows = store.rows(wanted)
    assert rows.tolist() == [ids.index(s) for s in wanted]
    batches = list(store.batches(rows, 2))
    assert [len(b) for b in batches] == [2, 1]
    np.testing.assert_array_equal(np.concatenate(batches), images[rows])
    assert store.rows([]).tolist() == []
    for outside in ("a", "s1x", "zz"):
        with pytest.raises(StoreError, match=f"no image for sample '{outside}'"):
            store.rows(["s1", outside, "s2"])
    with h5py.File(tmp_path / "pixels.h5", "r") as handle:
        assert handle["pixels"].shape == (5, 6, 7, 3)  # cut to the rows written
        assert handle["pixels"].chunks == (1, 6, 7, 3)
        assert handle.attrs["n_images"] == 5
    with pytest.raises(StoreError, match="no image for sample 'nope'"):
        store.rows(["s1", "nope"])


def test_damaged_or_foreign_pixel_stores_are_refused_by_name(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    ids = [f"s{i}" for i in range(5)]
    path = tmp_path / "pixels.h5"
    write_store(path, images, ids)
    with pytest.raises(ProvenanceError, match=f"{path}: provenance field 'pixel_size' is"):
        PixelStore(path, size=(16, 16))
    with pytest.raises(ProvenanceError, match=f"{path}: provenance field 'resize' is 'stretch', expected 'crop'"):
        PixelStore(path, resize="crop")
    index = tmp_path / "index.csv"
    index.write_text("sample_id\nother\n")
    with pytest.raises(ProvenanceError, match=f"{path}: provenance field 'index_sha256'"):
        PixelStore(path, index=index)

    damaged = tmp_path / "damaged.h5"
    data = bytearray(path.read_bytes())
    with h5py.File(path, "r") as handle:
        offset = handle["pixels"].id.get_chunk_info(2).byte_offset
    data[offset + 10] ^= 0xFF
    damaged.write_bytes(bytes(data))
    store = PixelStore(damaged)
    with pytest.raises(StoreError, match=f"{damaged}: damaged: stored bytes fail their checksum"):
        list(store.batches(store.rows(["s2"]), 1))

    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(StoreError, match=f"{truncated}: file is truncated"):
        PixelStore(truncated)
    with h5py.File(tmp_path / "features.h5", "w") as handle:
        handle.attrs["format"] = "augcache-features/1"
    with pytest.raises(StoreError, match="not an augcache pixel store"):
        PixelStore(tmp_path / "features.h5")


def test_index_step_decodes_once_into_the_store(tmp_path):
    root = make_image_folder(tmp_path / "data", {"circle": 3, "square": 3}, size=20)
    photo(root / "square" / "photo.jpg", 120, 90)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    index_path = tmp_path / "index.csv"
    with pytest.raises(Exception, match="broken.png"):
        index_with_pixel_store(root, 0.34, 0, "error", 2, tmp_path / "p0.h5", (16, 16), "crop")
    assert not (tmp_path / "p0.h5").exists() and not list(tmp_path.glob(".p0.h5*"))

    table, skipped = index_with_pixel_store(root, 0.34, 0, "skip", 2, tmp_path / "p1.h5", (16, 16), "crop")
    plain, _ = build_index(root, 0.34, 0, "skip", threads=2)
    pd.testing.assert_frame_equal(table, plain)
    assert skipped["path"].tolist() == [str(root / "circle" / "broken.png")]
    index_path.write_text(csv_text(table))
    store = PixelStore(tmp_path / "p1.h5", index=index_path, size=(16, 16), resize="crop")
    assert store.attrs["index_sha256"] == hashlib.sha256(index_path.read_bytes()).hexdigest()
    stored = np.concatenate(list(store.batches(np.arange(len(table)), 4)))
    expected = np.stack([load_pixels(p, (16, 16), "crop") for p in table["path"]])
    np.testing.assert_array_equal(stored, expected)

    index_with_pixel_store(root, 0.34, 0, "skip", 1, tmp_path / "p2.h5", (16, 16), "crop")
    assert (tmp_path / "p1.h5").read_bytes() == (tmp_path / "p2.h5").read_bytes()


def test_decoded_and_stored_pixels_give_the_same_batches(tmp_path):
    root = make_image_folder(tmp_path / "data", {"circle": 3, "square": 2}, size=24)
    table, _ = index_with_pixel_store(root, 0.4, 0, "error", 2, tmp_path / "pixels.h5", (16, 16), "pad")
    (tmp_path / "index.csv").write_text(csv_text(table))
    order = table.iloc[[3, 0, 4, 1]]
    stored = open_pixels((16, 16), "pad", tmp_path / "pixels.h5", tmp_path / "index.csv")
    decoded = open_pixels((16, 16), "pad")
    a = np.concatenate([b.numpy() for b in stored.batches(order["sample_id"], order["path"], 3)])
    b = np.concatenate([b.numpy() for b in decoded.batches(order["sample_id"], order["path"], 3)])
    np.testing.assert_array_equal(a, b)
    assert stored.provenance()["pixels_sha256"] == stored.store.sha256 != "decoded"


# the stores the run without a pixel store makes, to compare with the shared run's
DECODED_STORES = [f"results/features/{name}.h5" for name in ("train/epoch_0", "train/epoch_1", "val")]


@pytest.fixture(scope="module")
def pixel_runs(tmp_path_factory, float32_runs):
    """The cache made with the pixel store (the shared float32 run), and without it in another copy."""
    config, (stored, _) = float32_runs
    decoded = Workflow(tmp_path_factory.mktemp("decoded") / "project")
    decoded.run(dict(config, data=dict(config["data"], pixel_store=False)), *DECODED_STORES)
    return config, stored, decoded


def test_features_from_the_pixel_store_equal_augmented_stored_pixels(pixel_runs):
    from augcache.augmentation.augment import augment
    from augcache.base.conv_base import BaseSpec, build_base, feature_function
    from augcache.augmentation.manifest import AugmentConfig, params_array, read_manifest

    config, flow, _ = pixel_runs
    spec = BaseSpec.from_config({**config["conv_base"], "image_size": config["data"]["image_size"],
                                 "seed": config["seed"]})
    model, preprocess = build_base(spec)
    features = feature_function(model, preprocess, spec.image_size)
    aug = AugmentConfig.from_config(config["augment"])
    manifest = read_manifest(flow.path("results/manifest/epoch_1.csv"))
    with h5py.File(flow.path("results/dataset/pixels.h5"), "r") as pixels:
        row = {s.decode(): i for i, s in enumerate(pixels["sample_ids"][:])}
        images = np.stack([pixels["pixels"][row[s]] for s in manifest["sample_id"]]).astype(np.float32)
    expected = features(augment(images, params_array(manifest), aug.resampling)).numpy()
    with h5py.File(flow.path("results/features/train/epoch_1.h5"), "r") as store:
        np.testing.assert_allclose(store["features"][:], expected, rtol=1e-5, atol=1e-6)
        assert store.attrs["pixels_sha256"] == PixelStore(flow.path("results/dataset/pixels.h5")).sha256


def test_without_the_pixel_store_features_are_the_same(pixel_runs):
    _, stored, decoded = pixel_runs
    assert not decoded.path("results/dataset/pixels.h5").exists()
    for name in DECODED_STORES:
        with h5py.File(stored.path(name), "r") as a, h5py.File(decoded.path(name), "r") as b:
            assert a["features"][:].tobytes() == b["features"][:].tobytes(), name
            assert b.attrs["pixels_sha256"] == "decoded"
    assert "decoding every image file" in decoded.path("results/logs/extract/epoch_0.log").read_text()


def test_more_epochs_decode_nothing(pixel_runs, tmp_path):
    config, stored, _ = pixel_runs
    flow = stored.clone(tmp_path / "project")
    pixels = flow.path("results/dataset/pixels.h5")
    before = pixels.stat().st_mtime_ns, flow.path("results/logs/index_dataset.log").read_text()
    k = config["cache"]["k"]
    flow.run(dict(config, cache=dict(config["cache"], k=k + 2)), "cache")
    assert (pixels.stat().st_mtime_ns, flow.path("results/logs/index_dataset.log").read_text()) == before
    for epoch in (k, k + 1):
        log = flow.path(f"results/logs/extract/epoch_{epoch}.log").read_text()
        assert f"reading pixels from {'results/dataset/pixels.h5'}" in log
        assert "decod" not in log


def test_a_foreign_pixel_store_is_refused_by_the_extraction(pixel_runs, tmp_path):
    config, flow, _ = pixel_runs
    index = read_index(flow.path("results/dataset/index.csv"))
    other = tmp_path / "index.csv"
    other.write_text(csv_text(index.iloc[1:]))
    with pytest.raises(ProvenanceError, match="pixels.h5: provenance field 'index_sha256'"):
        open_pixels(config["data"]["image_size"], "stretch", flow.path("results/dataset/pixels.h5"), other)


def test_decoding_split_into_shard_jobs_gives_the_same_pixel_store(pixel_runs, tmp_path):
    config, unsharded, _ = pixel_runs
    flow = Workflow(tmp_path / "project")
    flow.run(dict(config, data=dict(config["data"], decode_shards=3)), "results/dataset/pixels.h5",
             "results/features/train/epoch_1.h5")
    index_log = flow.path("results/logs/index_dataset.log").read_text()
    assert "pixel store" not in index_log and "decode" not in index_log  # the shards checked the files
    assert "file(s) listed" in flow.path("results/logs/list_dataset.log").read_text()
    for shard in range(3):
        assert "decode shard" in flow.path(f"results/logs/decode_pixels/shard_{shard}.log").read_text()
    for parts in ("results/dataset/pixels", "results/dataset/listed"):  # deleted once used
        assert not flow.path(parts).exists() or not any(flow.path(parts).iterdir()), parts
    assert flow.path("results/dataset/index.csv").read_bytes() == unsharded.path("results/dataset/index.csv").read_bytes()
    assert_same_pixel_store(flow.path("results/dataset/pixels.h5"), unsharded.path("results/dataset/pixels.h5"))
    with h5py.File(flow.path("results/features/train/epoch_1.h5"), "r") as a, \
            h5py.File(unsharded.path("results/features/train/epoch_1.h5"), "r") as b:
        assert a["features"][:].tobytes() == b["features"][:].tobytes()


def sharded_index(source, folder, shards, on_bad_image="error", size=(16, 16)):
    """What the workflow does with data.decode_shards = shards, in one process: the listing, each
    shard's check and decode, the index from what they found, the merged pixel store.
    Returns (index, skipped, pixel store path) and leaves the parts in `folder`."""
    from augcache.data.dataset import index_of_shards, write_index
    from augcache.data.listing import list_source, write_listing
    from augcache.data.pixels import decode_shard, merge_pixel_shards

    folder.mkdir(parents=True, exist_ok=True)
    write_listing(list_source(source), folder / "candidates.csv", folder / "listed.csv")
    for shard in range(shards):
        decode_shard(folder / "candidates.csv", folder / f"{shard}.h5", folder / f"{shard}.csv", size, "stretch", 2,
                     shard, shards)
    table, skipped = index_of_shards(folder / "candidates.csv", folder / "listed.csv",
                                     [folder / f"{shard}.csv" for shard in range(shards)], source, 0.4, 0, on_bad_image)
    write_index(table, folder / "index.csv")
    merge_pixel_shards([folder / f"{shard}.h5" for shard in range(shards)], folder / "index.csv", folder / "pixels.h5")
    return table, skipped, folder / "pixels.h5"


def assert_same_pixel_store(a, b):
    with h5py.File(a, "r") as x, h5py.File(b, "r") as y:
        assert x["pixels"][:].tobytes() == y["pixels"][:].tobytes()
        assert x["sample_ids"][:].tolist() == y["sample_ids"][:].tolist()
        assert dict(x.attrs) == dict(y.attrs)


def test_pixel_shards_must_be_consecutive_parts_of_one_listing_holding_the_index(tmp_path):
    from augcache.data.pixels import merge_pixel_shards, shard_range

    assert [shard_range(7, 3, s) for s in range(3)] == [(0, 3), (3, 6), (6, 7)]
    assert shard_range(2, 3, 2) == (2, 2)
    root = make_image_folder(tmp_path / "data", {"circle": 3, "square": 2}, size=20)
    table, skipped, merged = sharded_index(root, tmp_path / "parts", 2)
    assert len(table) == 5 and skipped.empty
    assert PixelStore(merged, tmp_path / "parts" / "index.csv").attrs["n_images"] == 5
    parts = [tmp_path / "parts" / f"{shard}.h5" for shard in range(2)]
    with pytest.raises(ProvenanceError, match=f"{parts[0]}: provenance field 'shard' is 0, expected 1"):
        merge_pixel_shards([parts[0], parts[0]], tmp_path / "parts" / "index.csv", tmp_path / "bad.h5")
    other = tmp_path / "other.csv"
    other.write_text(csv_text(table.iloc[1:]))
    with pytest.raises(ProvenanceError, match="not the rows 0.. of .*other.csv"):
        merge_pixel_shards(parts, other, tmp_path / "bad.h5")
    other.write_text(csv_text(table.iloc[:4]))
    with pytest.raises(ProvenanceError, match="(not the rows|lists 4 images, the shards hold)"):
        merge_pixel_shards(parts, other, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.parametrize("shards", [2, 5])
def test_sharded_decoding_finds_every_bad_file_and_keeps_the_same_index_and_store(tmp_path, shards):
    """Bad files spread over the shards: with skip, the index, the skipped files and the pixel store
    equal one index job's (a name with a quote and a comma included); with error, one message
    names every bad file, as one index job's does."""
    from augcache.data.dataset import DatasetError

    root = make_image_folder(tmp_path / "data", {"circle": 4, "square": 4}, size=20)
    (root / "circle" / "zero.png").write_bytes(b"")
    (root / "square" / "garbled.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (root / "square" / "notes.jpg").write_text("text\n")
    os.symlink(root / "circle" / "circle_000.png", root / "square" / "dup_link.png")
    # names the listing's CSV must quote
    os.rename(root / "square" / "square_001.png", root / "square" / 'quote"d, comma ü.png')
    one_table, one_skipped = index_with_pixel_store(root, 0.4, 0, "skip", 2, tmp_path / "one.h5", (16, 16), "stretch")
    table, skipped, merged = sharded_index(root, tmp_path / "parts", shards, "skip")
    pd.testing.assert_frame_equal(table, one_table)
    pd.testing.assert_frame_equal(skipped, one_skipped)
    assert len(skipped) == 4
    assert_same_pixel_store(merged, tmp_path / "one.h5")
    with pytest.raises(DatasetError) as one:
        build_index(root, 0.4, 0, on_bad_image="error")
    with pytest.raises(DatasetError) as sharded:
        sharded_index(root, tmp_path / "again", shards, "error")
    assert str(sharded.value) == str(one.value)
    assert "4 bad file(s)" in str(sharded.value)
