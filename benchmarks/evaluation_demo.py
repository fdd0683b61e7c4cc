"""What each mode and each evaluation costs and gives on the built-in demo.

Runs the whole demo (config/config.yaml) in a fresh copy of the project with test-time views and the
k-NN classifier on (``eval.tta_views``, ``eval.knn``), then prints one table: for every mode of the
side-by-side table (K = cache.k) its final validation accuracy and macro-averaged accuracy (mean
over repeats), with the test-time views, its end-to-end seconds and features on disk (the report's
own account); a row per k-NN bank (as the report counts it: the jobs of its bank and of the
validation store, and its share of the k-NN job, each job's start included); and what the views themselves cost: their manifests, their extraction, the
scoring of every head with them, and their stores on disk.

    ./run bench evaluation_demo.py [--views 4] [--k 20] [--tta-augment '{"rotation_range": 0}'] [--cores N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from project_copy import copy_project, keep_or_remove


def job_seconds(project: Path, pattern: str) -> float:
    """Seconds of every job whose benchmark matches pattern below results/benchmarks, as the report
    counts them (each job's own clock, see augcache.report.costs)."""
    from augcache.report.costs import job_cost

    return float(sum(job_cost(f).seconds for f in (project / "results/benchmarks").glob(pattern)))


def knn_row_seconds(project: Path) -> list[float]:
    """The seconds of the report's k-NN rows (counted as a run's: its bank's jobs and its share of
    the k-NN job, each job's start included)."""
    html = (project / "results/report/report.html").read_text()
    return [float(cells[4]) for cells in re.findall(
        r'<tr data-mode="knn"><td>(.*?)</td><td>(.*?)</td><td.*?>(.*?)</td><td.*?>(.*?)</td><td>(.*?)</td>', html)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--tta-augment", type=json.loads, default={}, metavar="JSON",
                        help="eval.tta_augment: augment keys replaced for the views (default: none)")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--keep", action="store_true", help="keep the project copy and print where it is")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="augcache-evaluation-"))
    project = copy_project(work / "project")
    overlay = project / "evaluation.yaml"
    overlay.write_text(yaml.safe_dump({"eval": {"tta_views": args.views, "knn": {"k": args.k},
                                              "tta_augment": args.tta_augment}}))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores",
                             str(args.cores), "--configfile", str(overlay)], cwd=project, capture_output=True,
                            text=True)
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    wall = time.perf_counter() - start
    config = yaml.safe_load((project / "config/config.yaml").read_text())
    k_main = config["cache"]["k"]

    modes = pd.read_csv(project / "results/report/modes.csv")
    heads = pd.DataFrame(json.loads((project / "results/eval/heads.json").read_text())["runs"])
    finals = heads[(heads["head"] == "final") & ~heads["run"].str.contains("/sweep/")]
    rows = []
    for mode in modes.to_dict("records"):
        k = None if pd.isna(mode["k"]) else int(mode["k"])
        if k not in (None, k_main):
            continue
        runs = finals[(finals["mode"] == mode["mode"]) & ((finals["k"] == k) if k else True)]
        rows.append({"way": mode["mode"] + (f" K={k}" if k else ""),
                     "val acc": mode["final_val_accuracy_mean"],
                     "macro": mode["final_val_macro_accuracy_mean"],
                     f"with {args.views} views": float(runs["tta_accuracy"].mean()),
                     "seconds": mode["end_to_end_seconds"], "disk MB": mode["disk_bytes"] / 1e6})
    knn = json.loads((project / "results/eval/knn.json").read_text())
    for bank, seconds in zip(knn["banks"], knn_row_seconds(project), strict=True):
        rows.append({"way": f"k-NN k={knn['k']}, {bank['bank']} bank", "val acc": bank["accuracy"],
                     "macro": bank["macro_accuracy"], f"with {args.views} views": float("nan"),
                     "seconds": seconds, "disk MB": bank["disk_bytes"] / 1e6})
    print(pd.DataFrame(rows).set_index("way").round(3).to_string())

    views_disk = sum(p.stat().st_size for p in (project / "results/features/val_tta").glob("*.h5"))
    costs = {"view manifests s": job_seconds(project, "manifest/val_tta/*.tsv"),
             "view extraction s": job_seconds(project, "extract/val_tta/*.tsv"),
             "scoring every head with the views s": job_seconds(project, "evaluate_heads.tsv"),
             "k-NN job s (both banks, job start included)": job_seconds(project, "evaluate_knn.tsv"),
             "view stores MB": views_disk / 1e6, "demo wall s": wall,
             "heads scored": len(heads)}
    print("\n" + "\n".join(f"{name}: {value:.1f}" if isinstance(value, float) else f"{name}: {value}"
                           for name, value in costs.items()))
    test = project / "results/model/val_scores.json"
    scores = json.loads(test.read_text())
    print(f"\nexported head on the validation images: accuracy {scores['accuracy']:.3f}, macro "
          f"{scores['macro_accuracy']:.3f}, per class " +
          ", ".join(f"{name} {recall:.3f}" for name, recall in scores["recall"].items()))
    keep_or_remove(work, project, args.keep)


if __name__ == "__main__":
    main()
