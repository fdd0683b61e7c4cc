"""Bad input is found by the index step: all of it in one message, or skipped and recorded."""

import os
import shutil

import pandas as pd
import pytest
from PIL import Image

from augcache.data.dataset import DatasetError, build_index
from conftest import Workflow, check_log, make_image_folder, tiny_config

GOOD_NAMES = ["plain.png", "with space.png", "ünïcödé_形.png", "paren (1).png", "quote'single.png",
              'quote"double.png']


@pytest.fixture
def corpus(tmp_path):
    """Three classes of good images plus one file of each bad kind."""
    root = make_image_folder(tmp_path / "data", {"circle": 3, "square": 3}, size=16)
    good_dir = root / "triangle"
    good_dir.mkdir()
    for name in GOOD_NAMES:
        make_image_folder(tmp_path / "tmp", {"triangle": 1}, size=16)
        shutil.move(str(tmp_path / "tmp" / "triangle" / "triangle_000.png"), good_dir / name)
    outside = tmp_path / "outside.png"
    Image.new("RGB", (16, 16), (9, 9, 9)).save(outside)
    os.symlink(outside, good_dir / "link_to_outside.png")  # a symlink to a real image: fine
    bad = {}
    (root / "circle" / "zero.png").write_bytes(b"")
    bad["circle/zero.png"] = "empty file"
    jpeg = root / "square" / "square_000.png"
    Image.open(jpeg).convert("RGB").resize((64, 64)).save(root / "square" / "truncated.jpg", quality=90)
    data = (root / "square" / "truncated.jpg").read_bytes()
    (root / "square" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    bad["square/truncated.jpg"] = "corrupt or truncated"
    (root / "square" / "garbled.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    bad["square/garbled.png"] = "corrupt or truncated"
    (root / "circle" / "notes.jpg").write_text("this is a text file\n")
    bad["circle/notes.jpg"] = "not an image"
    os.symlink(root / "nowhere.png", root / "circle" / "dangling.png")
    bad["circle/dangling.png"] = "broken symbolic link"
    os.symlink(root / "circle" / "circle_000.png", root / "square" / "dup_link.png")
    bad["square/dup_link.png"] = "same file as"
    (root / "hexagon").mkdir()
    bad["hexagon"] = "class folder has no images"
    return root, bad


def test_error_lists_every_bad_file_in_one_message(corpus):
    root, bad = corpus
    with pytest.raises(DatasetError) as caught:
        build_index(root, 0.34, 0, on_bad_image="error")
    message = str(caught.value)
    assert f"{len(bad)} bad file(s)" in message
    assert "data.on_bad_image: skip" in message
    for relative, reason in bad.items():
        line = next(line for line in message.splitlines() if line.strip().startswith(str(root / relative) + ":"))
        assert reason in line, line


def test_skip_indexes_exactly_the_good_files_and_records_the_rest(corpus):
    root, bad = corpus
    table, skipped = build_index(root, 0.34, 0, on_bad_image="skip")
    good = {f"circle/circle_{i:03d}.png" for i in range(3)} | {f"square/square_{i:03d}.png" for i in range(3)}
    good |= {f"triangle/{name}" for name in GOOD_NAMES} | {"triangle/link_to_outside.png"}
    assert set(table["sample_id"]) == good
    assert sorted(skipped["path"]) == sorted(str(root / r) for r in bad)
    for relative, reason in bad.items():
        assert reason in skipped.set_index("path").loc[str(root / relative), "reason"]
    assert set(table["label"]) == {"circle", "square", "triangle"}


def test_odd_names_decode(corpus):
    from conftest import load_images

    root, _ = corpus
    images = load_images([root / "triangle" / name for name in GOOD_NAMES], (16, 16)).numpy()
    assert images.shape == (len(GOOD_NAMES), 16, 16, 3)


def test_csv_with_relative_paths_and_split_equals_the_folder(tiny_data, tmp_path):
    folder, _ = build_index(tiny_data, 0.2, 0)
    rows = [{"path": sid, "label": label, "split": split}
            for sid, label, split in folder[["sample_id", "label", "split"]].itertuples(index=False)]
    listing = tiny_data / "listing.csv"
    pd.DataFrame(rows).sample(frac=1.0, random_state=1).to_csv(listing, index=False)
    try:
        from_csv, skipped = build_index(listing, 0.2, 0)
    finally:
        listing.unlink()
    pd.testing.assert_frame_equal(from_csv, folder)
    assert skipped.empty


def test_csv_problems_are_listed_together(tiny_data, tmp_path):
    listing = tmp_path / "listing.csv"
    rel = os.path.relpath(tiny_data, tmp_path)
    listing.write_text(
        "path,label,split\n"
        f"{rel}/train/circle/circle_000.png,circle,train\n"
        f"{rel}/train/circle/circle_000.png,circle,train\n"
        f"{rel}/train/square/square_000.png,,train\n"
        f"{rel}/train/square/missing.png,square,train\n"
        f"{rel}/train/square/square_001.png,square,holdout\n"
        f"{rel}/val/circle/circle_000.png,circle,val\n"
    )
    with pytest.raises(DatasetError) as caught:
        build_index(listing, 0.2, 0)
    message = str(caught.value)
    assert "4 bad file(s)" in message
    assert "listed twice" in message and "no label" in message
    assert "missing.png: cannot be read" in message
    assert "split 'holdout' is not train, val or test" in message


def test_a_single_usable_class_is_an_error_even_when_skipping(tmp_path):
    root = make_image_folder(tmp_path / "data", {"circle": 3}, size=16)
    (root / "square").mkdir()
    (root / "square" / "bad.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="at least 2"):
        build_index(root, 0.34, 0, on_bad_image="skip")


def test_workflow_skip_records_skipped_files(tmp_path, tiny_base):
    root = make_image_folder(tmp_path / "data", {"circle": 4, "square": 4}, size=32)
    (root / "square" / "broken.png").write_bytes(b"not a png")
    flow = Workflow(tmp_path / "project")
    config = tiny_config(root, tiny_base, data={"on_bad_image": "skip", "val_fraction": 0.25})
    flow.run(config, "results/dataset/index.csv")
    skipped = pd.read_csv(flow.path("results/dataset/skipped.csv"))
    assert skipped["path"].tolist() == [str(root / "square" / "broken.png")]
    index = pd.read_csv(flow.path("results/dataset/index.csv"))
    assert len(index) == 8

    failed = flow.run(dict(config, data=dict(config["data"], on_bad_image="error")), "results/dataset/index.csv",
                      check=False)
    assert failed.returncode != 0
    assert "square/broken.png: not an image" in failed.stdout + failed.stderr + \
        flow.path("results/logs/index_dataset.log").read_text()


def test_weights_that_do_not_fit_fail_before_extraction_with_the_path(tmp_path, tiny_data):
    import keras

    small = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35)
    weights = tmp_path / "alpha035.weights.h5"
    small.save_weights(weights)
    flow = Workflow(tmp_path / "project")
    config = tiny_config(tiny_data, "unused", conv_base={"architecture": "MobileNetV2", "weights": str(weights),
                                                       "options": {"alpha": 1.0}})
    result = flow.run(config, check=False)
    assert result.returncode != 0
    log = check_log(flow).read_text()
    assert f"conv_base.weights: {weights} does not fit MobileNetV2" in log
    assert not flow.path("results/logs/extract").exists()
