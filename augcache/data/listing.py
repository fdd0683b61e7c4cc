"""What a data source lists: one candidate per image file (its sample id, path, label and split),
found without opening any image, the problems found on the way, and the fingerprint that says when
the files changed.

Sources: a folder of class subfolders (``train/`` and ``val/`` inside, or split later by a seeded
stratified fraction), or a CSV listing ``path,label[,split]`` with paths relative to the CSV.
:mod:`augcache.data.dataset` checks the candidates' files and makes the index of them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from augcache.core.atomic import write_csv
from augcache.data.images import IMAGE_EXTENSIONS

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
    normal_base = os.path.normpath(base)
    prefix = os.path.join(normal_base, "") if normal_base != "." else ""
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


CANDIDATE_COLUMNS = ("sample_id", "path", "label", "split")


def write_listing(listing, candidates_path, problems_path) -> None:
    """A listing (:func:`list_source`) as two CSVs: its candidates in order (an empty split where
    the source names none) and the problems found listing them."""
    candidates, problems, _ = listing
    write_csv(candidates_path, pd.DataFrame([c.__dict__ for c in candidates], columns=list(CANDIDATE_COLUMNS)))
    write_csv(problems_path, pd.DataFrame(problems, columns=list(SKIPPED_COLUMNS)))


def read_candidates(path) -> pd.DataFrame:
    """The candidates :func:`write_listing` wrote, as a table (see :func:`candidates_of`)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def candidates_of(table: pd.DataFrame) -> list[Candidate]:
    """Candidates of rows of :func:`read_candidates` (an empty split is none)."""
    return [Candidate(sample_id, path, label, split or None)
            for sample_id, path, label, split in table[list(CANDIDATE_COLUMNS)].itertuples(index=False)]


def read_problems(path) -> list[tuple[str, str]]:
    """(path, reason) of each problem in a CSV of SKIPPED_COLUMNS."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return list(table[list(SKIPPED_COLUMNS)].itertuples(index=False, name=None))


def source_key(source) -> str:
    """The config key that names a source: data.dir for a folder, data.csv for a listing."""
    return "data.dir" if Path(source).is_dir() else "data.csv"


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
    from augcache.core.provenance import sha256_file

    return sha256_file(path)
