"""Five ways of augmenting on the built-in demo, side by side: none, feature-space augmentation of
the unaugmented features (featureaug), the cache of K exactly augmented epochs (cached), both
together (hybrid) and on the fly.

One workflow run in a fresh copy of the project, with the demo config's head budget (head.epochs)
and repeats for every mode, K = cache.k and no K sweep. Prints the report's side-by-side table
(final validation accuracy mean ± sd over repeats, end-to-end seconds, features on disk) and its
verdict.

    ./run bench feature_aug.py [--cores N] [--repeats R] [--configfile over.yaml] [--keep]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from project_copy import ROOT, copy_project, keep_or_remove

MODES = ["noaug", "featureaug", "cached", "hybrid", "onthefly"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, help="repeats of every mode (default: the demo config's)")
    parser.add_argument("--configfile", type=Path,
                        help="a config overlay for every mode, e.g. other feature_augment settings")
    parser.add_argument("--keep", action="store_true", help="keep the project copy and print where it is")
    args = parser.parse_args()

    from snakemake.utils import update_config

    from augcache.report.side_by_side import side_by_side_table, verdict

    work = Path(tempfile.mkdtemp(prefix="augcache-feature-aug-"))
    project = copy_project(work / "project")
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    train = {"modes": MODES, "sweep_k": []}
    if args.repeats:
        train["repeats"] = args.repeats
    overlay = work / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"train": train}))
    overlays = [overlay] + ([args.configfile.resolve()] if args.configfile else [])
    if args.configfile:
        update_config(config, yaml.safe_load(args.configfile.read_text()) or {})
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores",
                             str(args.cores), "--configfile", *map(str, overlays)], cwd=project, capture_output=True,
                            text=True)
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    seconds = time.perf_counter() - start

    k = config["cache"]["k"]
    side = side_by_side_table(pd.read_csv(project / "results/report/modes.csv"), k)
    print(f"demo, {config['head']['epochs']} head epochs in every mode, K={k}, "
          f"{train.get('repeats', config['train']['repeats'])} repeats, feature_augment "
          f"{config.get('feature_augment', {})}; whole run {seconds:.0f} s on {args.cores} cores")
    print(f"{'mode':<12} {'final val acc':>15} {'end to end s':>13} {'disk MB':>8}")
    for row in side.to_dict("records"):
        name = row["mode"] + (f" K={k}" if pd.notna(row["k"]) else "")
        spread = "" if pd.isna(row["accuracy_sd"]) else f" ± {row['accuracy_sd']:.3f}"
        print(f"{name:<12} {row['accuracy_mean']:>7.3f}{spread:<8} {row['seconds']:>13.1f} "
              f"{row['disk_bytes'] / 1e6:>8.2f}")
    print(verdict(side))
    keep_or_remove(work, project, args.keep)


if __name__ == "__main__":
    main()
