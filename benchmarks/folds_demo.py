"""Cross-validation from one cache against one train/val split, on the built-in demo.

Runs the demo (config/config.yaml) twice, each in a fresh copy of the project, with the modes
cached, on the fly and no augmentation at K = cache.k (no K sweep): once on its train/val split, once
with ``eval.folds`` (5 by default). Prints, for each, every mode's seconds (the report's account:
every job its runs needed, each job once) and the paired difference of cached and of no
augmentation against on the fly with its 95 % interval and that interval's width, as the report
computes them (:mod:`augcache.report.compared`), and the extraction jobs each planned.

    ./run bench folds_demo.py [--folds 5] [--repeats 2] [--cores N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from project_copy import copy_project, keep_or_remove

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's augcache package

MODES = ["cached", "onthefly", "noaug"]


def run(work: Path, name: str, overlay: dict, cores: int) -> tuple[Path, float]:
    project = copy_project(work / name)
    path = project / "folds.yaml"
    path.write_text(yaml.safe_dump(overlay))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", str(cores),
                             "--configfile", str(path)], cwd=project, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"snakemake failed ({name}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return project, time.perf_counter() - start


def summary(project: Path, config: dict, wall: float) -> dict:
    """Seconds per mode, the paired differences against on the fly, the extraction jobs of one run."""
    from augcache.jobs.settings import Settings
    from augcache.report.compared import final_outcomes, paired
    from augcache.report.costs import account
    from augcache.report.tables import load_runs

    settings = Settings(config)
    summaries, _ = load_runs([project / d for d in settings.run_dirs()])
    summaries["run"] = [str(Path(r).relative_to(project)) for r in summaries["run"]]
    costs = account(settings, summaries, settings.epoch_groups(2), project)
    outcomes = final_outcomes(json.loads((project / "results/eval/heads.json").read_text()))
    k = int(config["cache"]["k"])
    row = {"wall s": round(wall), **{f"{m} s": round(costs.mode_seconds.get((m, k if m == "cached" else None),
                                                                               float("nan"))) for m in MODES}}
    for mode, key in (("cached", ("cached", k)), ("noaug", ("noaug", None))):
        d = paired(outcomes, key, ("onthefly", None))
        row[f"{mode} − on the fly, points (95 % interval)"] = (f"{100 * d.mean:+.1f} ({100 * d.low:+.1f} to "
                                                              f"{100 * d.high:+.1f})")
        row[f"{mode} interval width, points"] = round(100 * d.width, 1)
    row["extraction jobs"] = sum(1 for p in (project / "results/benchmarks").rglob("*.tsv") if "extract" in str(p))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--keep", action="store_true", help="keep the project copies and print where they are")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="augcache-folds-"))
    base = {"train": {"modes": MODES, "sweep_k": [], "repeats": args.repeats}}
    rows = {}
    for name, folds in (("one split", 0), (f"{args.folds} folds", args.folds)):
        overlay = dict(base, eval={"folds": folds})
        project, wall = run(work, name.replace(" ", "_"), overlay, args.cores)
        rows[name] = summary(project, run_config(project, overlay), wall)
    print(pd.DataFrame(rows).to_string())
    keep_or_remove(work, work, args.keep)


def run_config(project: Path, overlay: dict) -> dict:
    """The run's config: the project's with the overlay, its defaults filled by the schema."""
    from snakemake.utils import update_config, validate

    config = yaml.safe_load((project / "config/config.yaml").read_text())
    update_config(config, overlay)
    validate(config, str(project / "workflow/schemas/config.schema.yaml"), set_default=True)
    return config


if __name__ == "__main__":
    main()
