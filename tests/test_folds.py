"""Cross-validation folds: stratified, disjoint, covering every labelled image, seeded, and
byte-identical from one run (or backend: numpy alone draws them) to the next."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from augcache.data.folds import assign_folds, fold_mask, labelled_rows, read_folds, write_folds

pytestmark = pytest.mark.unit


def index(n=103, classes=(("ant", 0.6), ("bee", 0.3), ("cat", 0.1)), test=7):
    rng = np.random.default_rng(5)
    labels = rng.choice([c for c, _ in classes], size=n, p=[p for _, p in classes])
    rows = pd.DataFrame({"sample_id": [f"{label}/img_{i:04d}.jpg" for i, label in enumerate(labels)],
                         "label": labels, "split": np.where(rng.random(n) < 0.25, "val", "train")})
    tests = pd.DataFrame({"sample_id": [f"test/{i}.jpg" for i in range(test)], "label": "ant", "split": "test"})
    return pd.concat([rows, tests], ignore_index=True)


def test_folds_are_stratified_disjoint_and_cover_every_labelled_image():
    table = index()
    labelled = labelled_rows(table, folds=5)
    assert set(labelled["split"]) == {"train", "val"} and len(labelled) == 103
    assert set(labelled_rows(table, folds=0)["split"]) == {"train"}
    folds = assign_folds(labelled, 5, seed=42)
    # every labelled image once, no test image
    assert sorted(folds["sample_id"]) == sorted(labelled["sample_id"])
    assert folds["sample_id"].is_unique
    assert set(folds["fold"]) == set(range(5))
    sizes = folds["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    for label, group in folds.groupby("label"):
        per_fold = group["fold"].value_counts().reindex(range(5), fill_value=0)
        assert per_fold.max() - per_fold.min() <= 1, label


def test_folds_depend_on_the_seed_alone_and_keep_their_bytes(tmp_path):
    labelled = labelled_rows(index(), folds=3)
    digests = []
    for name, rows in (("a", labelled), ("b", labelled.sample(frac=1, random_state=1))):
        write_folds(assign_folds(rows, 3, seed=42), tmp_path / f"{name}.csv")
        digests.append(hashlib.sha256((tmp_path / f"{name}.csv").read_bytes()).hexdigest())
    # the rows' order in the index does not matter, and the bytes are those of every earlier run
    assert digests[0] == digests[1]
    assert digests[0] == "89ca3cf96b82e166ae4e17ac8694a90278a8cc6b74aaa4c3cf3372855f65b662"
    other = assign_folds(labelled, 3, seed=43)
    assert not np.array_equal(other["fold"], assign_folds(labelled, 3, seed=42)["fold"])


def test_a_fold_mask_follows_a_stores_rows_and_names_an_unknown_image(tmp_path):
    folds = assign_folds(labelled_rows(index(), folds=4), 4, seed=0)
    write_folds(folds, tmp_path / "folds.csv")
    back = read_folds(tmp_path / "folds.csv")
    ids = list(folds["sample_id"][::-1])
    mask = fold_mask(ids, back, 2)
    assert mask.sum() == (folds["fold"] == 2).sum()
    assert all(back[i] == 2 for i, m in zip(ids, mask) if m)
    with pytest.raises(ValueError, match=r"folds.csv: no fold for \['new/1.jpg'\]"):
        fold_mask([*ids, "new/1.jpg"], back, 2, tmp_path / "folds.csv")


def test_too_few_folds_or_images_are_refused():
    with pytest.raises(ValueError, match="eval.folds: 1 fold"):
        assign_folds(labelled_rows(index(), 1), 1, seed=0)
    with pytest.raises(ValueError, match="only 4 labelled images"):
        assign_folds(labelled_rows(index(n=4, test=0), 5), 5, seed=0)
