"""The dataset index: one row per image with its id, path, label and split, checked before any job.

Sources: a folder of class subfolders (``train/`` and ``val/`` inside, or split by a seeded
stratified fraction), or a CSV listing ``path,label[,split]`` with paths relative to the CSV.
Every listed image is decoded once here, so a corrupt, truncated, empty or foreign file is found
before a GPU job starts. ``on_bad_image: error`` stops with one message listing every problem;
``skip`` leaves the bad files out and returns them with their reasons.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augcache.atomic import write_csv
from augcache.images import IMAGE_EXTENSIONS, ImageTooLarge, decode_file
from augcache.progress import Progress

log = logging.getLogger(__name__)

INDEX_COLUMNS = ("sample_id", "path", "label", "label_index", "split")
SKIPPED_COLUMNS = ("path", "reason")
SPLITS = ("train", "val")
# Images scored once, by the exported model only (data.test_dir, or a CSV's split column).
TEST = "test"
# Sample ids of data.test_dir's images start with this.
TEST_PREFIX = "test_dir/"


class DatasetError(ValueError):
    """The data source cannot be indexed as it is."""


@dataclass(frozen=True)
class Candidate:
    sample_id: str
    path: str
    label: str
    split: str | None


def files_below(folder) -> list[Path]:
    """Every file below a folder, folder by folder in name order, following symbolic links to
    files and to folders (each real folder once, so a link back up does not loop); broken links
    are listed too."""
    seen, files = set(), []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        files.extend(Path(dirpath, name) for name in sorted(filenames))
    return files


def _folder_candidates(root: Path):
    """Candidates and problems (path, reason) of a folder source."""
    candidates, problems = [], []
    if all((root / s).is_dir() for s in SPLITS):
        split_dirs = [(root / s, s) for s in SPLITS]
    else:
        split_dirs = [(root, None)]
    for base, split in split_dirs:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = sorted(p for p in files_below(class_dir) if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                problems.append((str(class_dir), "class folder has no images"))
            for path in files:
                relative = path.relative_to(root)
                candidates.append(Candidate(relative.as_posix(), os.path.join(root, relative),
                                            class_dir.name, split))
    return candidates, problems


def _suffix(name: str) -> str:
    """A file name's suffix as pathlib gives it: from the last dot, unless that dot is the name's
    first or last character."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _csv_candidates(csv_path: Path):
    """Candidates and problems of a CSV listing (path,label[,split]), problems in line order.

    Strings only, no Path per row: a million rows are listed in a few seconds."""
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"data.csv: {csv_path} cannot be read as CSV: {err}") from err
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise DatasetError(f"data.csv: {csv_path} has no column(s) {', '.join(missing)} "
                           f"(columns: path,label[,split])")
    has_split = "split" in table.columns
    raws = table["path"].str.strip().tolist()
    labels = table["label"].str.strip().tolist()
    splits = table["split"].str.strip().tolist() if has_split else [None] * len(raws)
    base = str(csv_path.parent)
    # the file's path is base/relative normalised; a relative path that is absolute or climbs out
    # of base is joined and normalised whole
    prefix = os.path.join(os.path.normpath(base), "") if os.path.normpath(base) != "." else ""
    known_splits = {*SPLITS, TEST}
    candidates, problems, first_line = [], [], {}
    for line, raw, label, split in zip(range(2, len(raws) + 2), raws, labels, splits):
        if not raw:
            problems.append((f"{csv_path}:{line}", "empty path"))
            continue
        relative = os.path.normpath(raw)
        path = (os.path.normpath(os.path.join(base, raw)) if relative.startswith(("/", "..")) or relative == "."
                else prefix + relative)
        if path in first_line:
            problems.append((path, f"listed twice ({csv_path}:{line} and {csv_path}:{first_line[path]})"))
            continue
        first_line[path] = line
        if not label:
            problems.append((path, f"no label ({csv_path}:{line})"))
        elif has_split and split not in known_splits:
            problems.append((path, f"split {split!r} is not train, val or test ({csv_path}:{line})"))
        elif _suffix(relative.rpartition("/")[2]).lower() not in IMAGE_EXTENSIONS:
            problems.append((path, f"extension is not one of {', '.join(IMAGE_EXTENSIONS)} ({csv_path}:{line})"))
        else:
            candidates.append(Candidate(relative, path, label, split))
    return candidates, problems


def quick_check_decode(path) -> None:
    """Decode a file only to see that it is a whole image (JPEGs at their smallest DCT scale: every
    byte is still read and entropy-decoded, so truncation and corrupt streams are found)."""
    decode_file(path, at_least=(1, 1))


def check_image(path: str, decode=quick_check_decode):
    """(pixels, reason): what decode(path) returns, and why `path` is not a usable image (None if it is)."""
    from PIL import Image, UnidentifiedImageError

    if os.path.islink(path) and not os.path.exists(path):
        return None, "broken symbolic link"
    try:
        size = os.path.getsize(path)
    except OSError as err:
        return None, f"cannot be read: {err.strerror or err}"
    if size == 0:
        return None, "empty file (0 bytes)"
    try:
        pixels = decode(path)
    except UnidentifiedImageError:
        return None, "not an image (unrecognised content)"
    except PermissionError as err:
        return None, f"cannot be read: {err.strerror}"
    except ImageTooLarge as err:
        return None, str(err)
    except Image.DecompressionBombError as err:
        return None, f"too many pixels ({err})"
    except (OSError, ValueError, SyntaxError) as err:
        return None, f"corrupt or truncated image: {err}"
    if pixels is not None and (pixels.shape[0] == 0 or pixels.shape[1] == 0):
        return None, "image has no pixels"
    return pixels, None


def _unique_targets(candidates):
    """Candidates whose files are not the same file as an earlier one, and problems for the rest.

    A file's real path is its folder's real path (resolved once per folder) and its name, unless
    the file itself is a symbolic link."""
    real_folders, by_target, unique, problems = {}, {}, [], []
    for c in candidates:
        folder, _, name = c.path.rpartition("/")
        if not folder or name in ("", ".", "..") or os.path.islink(c.path):
            target = os.path.realpath(c.path)
        else:
            real = real_folders.get(folder)
            if real is None:
                real = real_folders[folder] = os.path.realpath(folder)
            target = os.path.join(real, name)
        if target in by_target:
            problems.append((c.path, f"same file as {by_target[target]} (symbolic link)"))
        else:
            by_target[target] = c.path
            unique.append(c)
    return unique, problems


def check_all(candidates, threads: int, decode=quick_check_decode, sink=None, block: int = 64,
              label: str = "decode"):
    """(good candidates, problems): every candidate decoded, `threads` at a time, in order.

    sink: called as sink(pixels, sample_ids) with the decoded pixels of each block's good
    candidates, in candidate order (the pixel store's rows); None discards them.
    """
    good, problems = [], []
    progress = Progress(len(candidates), label)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(candidates), block):
            part = candidates[start:start + block]
            results = list(pool.map(lambda c: check_image(c.path, decode), part))
            kept = [(c, pixels) for c, (pixels, reason) in zip(part, results) if not reason]
            problems += [(c.path, reason) for c, (_, reason) in zip(part, results) if reason]
            good += [c for c, _ in kept]
            if sink is not None and kept:
                sink(np.stack([pixels for _, pixels in kept]), [c.sample_id for c, _ in kept])
            progress.update(start + len(part))
    return good, problems


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: round(n_c * val_fraction) rows of each class c, seeded."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5917]))
    is_val = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels == label)
        take = int(round(len(rows) * val_fraction))
        if take == 0:
            log.warning("class %r has %d image(s): none is held out for validation (data.val_fraction %s); "
                        "its validation accuracy cannot be measured", label, len(rows), val_fraction)
        is_val[rng.permutation(rows)[:take]] = True
    return is_val


def list_source(source, test_dir=None) -> tuple[list[Candidate], list, str]:
    """(candidates sorted by sample id, problems, config key) of a folder or CSV source, and of the
    class folders of test_dir (split ``test``, sample ids starting with TEST_PREFIX)."""
    source = Path(source)
    test, test_problems = [], []
    if test_dir:
        if not Path(test_dir).is_dir():
            raise DatasetError(f"data.test_dir: {test_dir} does not exist")
        found, test_problems = _folder_candidates(Path(test_dir))
        test = [Candidate(TEST_PREFIX + c.sample_id, c.path, c.label, TEST) for c in found]
    if source.is_dir():
        candidates, problems = _folder_candidates(source)
        key = "data.dir"
    elif source.is_file():
        candidates, problems = _csv_candidates(source)
        key = "data.csv"
    else:
        key = "data.csv" if source.suffix.lower() == ".csv" else "data.dir"
        raise DatasetError(f"{key}: {source} does not exist")
    candidates, duplicates = _unique_targets(candidates + test)
    return sorted(candidates, key=lambda c: c.sample_id), problems + test_problems + duplicates, key


def assign_splits(table: pd.DataFrame, val_fraction: float, seed: int) -> pd.DataFrame:
    """Rows of a source without splits (sorted by sample_id) split into train and val by a seeded
    stratified fraction; a source that names its splits keeps them."""
    if table["split"].isna().any():
        is_val = stratified_split(table["label"].to_numpy(), val_fraction, seed)
        table["split"] = np.where(is_val, "val", "train")
    return table


def build_index(source, val_fraction: float, seed: int, on_bad_image: str = "error",
                threads: int = 4, decode=quick_check_decode, sink=None,
                listing=None, test_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(index, skipped) of a folder or CSV source.

    index: INDEX_COLUMNS sorted by sample_id; label_index numbers the sorted class names from 0.
    skipped: SKIPPED_COLUMNS, the files left out (``on_bad_image: skip``). With ``error``, any
    problem raises DatasetError listing all of them. Every file is decoded once by decode(path)
    (see :func:`check_all` for sink); listing: the result of :func:`list_source`, if already made.
    """
    source = Path(source)
    candidates, problems, key = listing or list_source(source, test_dir)
    candidates, bad = check_all(candidates, threads, decode, sink)
    problems = problems + bad
    if problems and on_bad_image == "error":
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        raise DatasetError(f"{key}: {len(problems)} bad file(s) or folder(s) in {source} "
                           f"(fix them, or set data.on_bad_image: skip to leave them out):\n{lines}")
    names = sorted({c.label for c in candidates if c.split != TEST})
    unknown = sorted({c.label for c in candidates if c.split == TEST} - set(names))
    if unknown:
        raise DatasetError(f"data.test_dir: class(es) {', '.join(unknown)} have test images but no training "
                           "or validation images; the model cannot predict them")
    if len(names) < 2:
        raise DatasetError(f"{key}: {source} holds {len(names)} class(es) with usable images; "
                           "at least 2 are needed")
    table = pd.DataFrame([c.__dict__ for c in candidates])
    table["label_index"] = table["label"].map({name: i for i, name in enumerate(names)})
    table = table.sort_values("sample_id", kind="stable").reset_index(drop=True)
    table = assign_splits(table, val_fraction, seed)
    for split in SPLITS:
        if not (table["split"] == split).any():
            raise DatasetError(f"{key}: {source}: the {split} split is empty (check data.val_fraction)")
    skipped = pd.DataFrame(problems, columns=list(SKIPPED_COLUMNS))
    return table[list(INDEX_COLUMNS)], skipped


def index_folder(data_dir, val_fraction: float, seed: int) -> pd.DataFrame:
    """Index of a clean source (any bad file is an error)."""
    return build_index(data_dir, val_fraction, seed)[0]


def listing_fingerprint(source, content: bool = False) -> str:
    """sha256 over relative path, size and mtime of every file of a source folder (symbolic links
    followed), or of a CSV listing and the files it names: changes when an image is added, removed
    or rewritten. content: over each file's bytes instead of its mtime, for files rewritten in
    place with their old time (slower: every file is read)."""
    root = Path(source)
    digest = hashlib.sha256()

    def add(path: Path, name: str) -> None:
        try:
            stat = path.stat()
            detail = _file_sha256(path) if content else stat.st_mtime_ns
            digest.update(f"{name}\0{stat.st_size}\0{detail}\n".encode())
        except OSError:
            digest.update(f"{name}\0missing\n".encode())

    if root.is_dir():
        for path in files_below(root):
            add(path, path.relative_to(root).as_posix())
    elif root.is_file():
        add(root, root.name)
        try:
            listed = pd.read_csv(root, dtype=str, keep_default_na=False).get("path", pd.Series([])).tolist()
        except (OSError, ValueError):
            listed = []
        if content:
            for raw in listed:
                add(root.parent / raw, raw)
        else:
            # the same lines as add() writes, from plain strings (a million files in about 5 s),
            # hashed 10,000 at a time
            parent, lines = str(root.parent), []
            for raw in listed:
                try:
                    stat = os.stat(os.path.join(parent, raw))
                    lines.append(f"{raw}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
                except OSError:
                    lines.append(f"{raw}\0missing\n")
                if len(lines) == 10_000:
                    digest.update("".join(lines).encode())
                    lines = []
            digest.update("".join(lines).encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    from augcache.provenance import sha256_file

    return sha256_file(path)


def write_index(table: pd.DataFrame, path) -> None:
    write_csv(path, table)


def read_index(path, columns=None) -> pd.DataFrame:
    """The index written by :func:`write_index`; columns: only these (a job that needs the sizes
    of a large index parses two of its five columns)."""
    return pd.read_csv(path, dtype={"sample_id": str, "path": str, "label": str, "split": str},
                       keep_default_na=False, usecols=columns)


def class_names(index: pd.DataFrame) -> list[str]:
    """Class names in label_index order."""
    pairs = index[["label_index", "label"]].drop_duplicates().sort_values("label_index")
    return pairs["label"].tolist()
