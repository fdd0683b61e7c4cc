import pytest

from augcache.data.dataset import class_names, index_folder
from augcache.data.listing import listing_fingerprint
from conftest import make_image_folder


def test_train_and_val_folders_give_the_split(tiny_data):
    table = index_folder(tiny_data, val_fraction=0.5, seed=0)
    assert table.groupby("split").size().to_dict() == {"train": 18, "val": 6}
    assert class_names(table) == ["circle", "square", "triangle"]
    assert table["sample_id"].iloc[0] == "train/circle/circle_000.png"
    assert table["sample_id"].is_monotonic_increasing


def test_flat_folder_is_split_stratified_and_seeded(tmp_path):
    root = make_image_folder(tmp_path, {"circle": 10, "square": 5}, size=16)
    a = index_folder(root, val_fraction=0.2, seed=0)
    assert a[a["split"] == "val"].groupby("label").size().to_dict() == {"circle": 2, "square": 1}
    assert a.equals(index_folder(root, val_fraction=0.2, seed=0))
    assert not a["split"].equals(index_folder(root, val_fraction=0.2, seed=1)["split"])


def test_a_single_class_is_refused(tmp_path):
    root = make_image_folder(tmp_path, {"circle": 4}, size=16)
    with pytest.raises(ValueError, match="data.dir.*at least 2"):
        index_folder(root, 0.25, 0)


def test_an_empty_class_folder_is_named(tmp_path):
    root = make_image_folder(tmp_path, {"circle": 4, "square": 4}, size=16)
    (root / "triangle").mkdir()
    with pytest.raises(ValueError, match="triangle"):
        index_folder(root, 0.25, 0)


def test_fingerprint_changes_when_an_image_is_added(tmp_path):
    root = make_image_folder(tmp_path, {"circle": 2, "square": 2}, size=16)
    before = listing_fingerprint(root)
    assert before == listing_fingerprint(root)
    make_image_folder(root, {"circle": 3}, size=16)
    assert listing_fingerprint(root) != before


def test_a_class_folder_linked_in_is_indexed_and_fingerprinted(tmp_path):
    import os

    root = make_image_folder(tmp_path / "data", {"circle": 2, "square": 2}, size=16)
    elsewhere = make_image_folder(tmp_path / "elsewhere", {"triangle": 2}, size=16)
    os.symlink(elsewhere / "triangle", root / "triangle")
    os.symlink(root / "circle", root / "circle" / "loop")  # a link back up is walked once, not forever
    table = index_folder(root, val_fraction=0.5, seed=0)
    assert sorted(table["label"].unique()) == ["circle", "square", "triangle"]
    before = listing_fingerprint(root)
    make_image_folder(elsewhere, {"triangle": 3}, size=16, seed=5)  # a new image inside the linked folder
    assert listing_fingerprint(root) != before


def test_content_fingerprint_sees_bytes_rewritten_with_their_old_time(tmp_path):
    import os

    root = make_image_folder(tmp_path, {"circle": 2, "square": 2}, size=16)
    image = sorted((root / "circle").iterdir())[0]
    stat = image.stat()
    by_stat, by_content = listing_fingerprint(root), listing_fingerprint(root, content=True)
    data = bytearray(image.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert listing_fingerprint(root) == by_stat  # path, size and time alone cannot tell
    rewritten = listing_fingerprint(root, content=True)
    assert rewritten != by_content
    os.utime(image)  # touched: a new time, the same bytes
    assert listing_fingerprint(root, content=True) == rewritten
    assert listing_fingerprint(root) != by_stat


def test_a_csv_listings_fingerprint_is_every_listed_files_name_size_and_time(tmp_path):
    import hashlib
    import os


    (tmp_path / "a.png").write_bytes(b"12345")
    listing = tmp_path / "list.csv"
    listing.write_text("path,label\na.png,x\ngone.png,y\n")
    lines = []
    for path in (listing, tmp_path / "a.png"):
        stat = os.stat(path)
        lines.append(f"{path.name if path == listing else 'a.png'}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
    lines.append("gone.png\0missing\n")
    assert listing_fingerprint(listing) == hashlib.sha256("".join(lines).encode()).hexdigest()
    before = listing_fingerprint(listing)
    os.utime(tmp_path / "a.png", ns=(1, 1))
    assert listing_fingerprint(listing) != before


def _listing_row_by_row(csv_path):
    """A CSV listing's candidates and problems, one row at a time through pathlib (the definition
    the column-at-a-time listing keeps)."""
    import os
    from pathlib import Path

    import pandas as pd

    from augcache.data.listing import SPLITS, TEST, Candidate
    from augcache.data.images import IMAGE_EXTENSIONS

    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    has_split = "split" in table.columns
    candidates, problems, seen = [], [], {}
    for line, row in enumerate(table.itertuples(index=False), start=2):
        raw, where = str(row.path).strip(), f"{csv_path}:{line}"
        if not raw:
            problems.append((where, "empty path"))
            continue
        path = os.path.normpath(os.path.join(csv_path.parent, raw))
        label, split = str(row.label).strip(), str(row.split).strip() if has_split else None
        if path in seen:
            problems.append((path, f"listed twice ({where} and {seen[path]})"))
            continue
        seen[path] = where
        if not label:
            problems.append((path, f"no label ({where})"))
        elif has_split and split not in (*SPLITS, TEST):
            problems.append((path, f"split {split!r} is not train, val or test ({where})"))
        elif Path(raw).suffix.lower() not in IMAGE_EXTENSIONS:
            problems.append((path, f"extension is not one of {', '.join(IMAGE_EXTENSIONS)} ({where})"))
        else:
            candidates.append(Candidate(Path(os.path.normpath(raw)).as_posix(), path, label, split))
    return candidates, problems


@pytest.mark.parametrize("base", ["absolute", "relative", "here"])
def test_a_csv_listing_is_read_as_row_by_row_reading_defines_it(tmp_path, monkeypatch, base):
    """Odd paths (./, //, .., absolute, trailing dots and slashes, hidden names, case, spaces) give
    the same candidates and problems, in the same order, as reading the rows one by one."""
    from augcache.data.listing import _csv_candidates

    (tmp_path / "lists").mkdir()
    rows = ["path,label,split", "a/x.png,c,train", " ./a//y.PNG ,c,val", "a/x.png,c,train", "a/../a/x.png,d,val",
            "../up/z.jpg,c,train", f"{tmp_path}/abs/w.jpeg,d,test", ",c,train", "a/n.txt,c,train",
            "a/.png,c,train", "a/..png,c,train", "a/b.,c,train", "a/q.png,,train", "a/r.png,c,holdout",
            "a/s.png/.,d,train", "a/t t.webp, d ,train", "b/x.png,c,train", ".,c,train", "a/u.GIF,c,val"]
    listing = tmp_path / "lists" / "listing.csv"
    listing.write_text("\n".join(rows) + "\n")
    if base == "relative":
        monkeypatch.chdir(tmp_path)
        listing = listing.relative_to(tmp_path)
    elif base == "here":
        monkeypatch.chdir(tmp_path / "lists")
        listing = type(listing)("listing.csv")
    candidates, problems = _csv_candidates(listing)
    assert (candidates, problems) == _listing_row_by_row(listing)
    assert len(candidates) == 9 and len(problems) == 9


def test_files_reached_twice_through_linked_folders_or_files_are_found(tmp_path):
    """A file listed through a linked folder, or through a linked file, is the same file as the one
    listed first; each kept file's real path is os.path.realpath's."""
    import os

    from augcache.data.listing import Candidate, _unique_targets

    root = make_image_folder(tmp_path / "data", {"circle": 3, "square": 2}, size=8)
    os.symlink(root / "circle", root / "ring")
    os.symlink(root / "square" / "square_000.png", root / "circle_alias.png")
    paths = [root / "circle" / "circle_000.png", root / "ring" / "circle_000.png", root / "ring" / "circle_001.png",
             root / "square" / "square_000.png", root / "circle_alias.png", root / "circle" / "missing.png",
             root / "circle" / "circle_001.png", tmp_path / "data" / "." / "circle" / "circle_002.png"]
    candidates = [Candidate(str(p), str(p), "x", None) for p in paths]
    unique, problems = _unique_targets(candidates)
    assert [c.path for c in unique] == [str(paths[i]) for i in (0, 2, 3, 5, 7)]
    assert [(p, r.split(" (")[0]) for p, r in problems] == [
        (str(paths[1]), f"same file as {paths[0]}"), (str(paths[4]), f"same file as {paths[3]}"),
        (str(paths[6]), f"same file as {paths[2]}")]
