"""The built-in demo under each Keras backend, side by side.

Runs the whole demo (every mode of config/config.yaml, report, export) once under TensorFlow and
once under JAX (``software.backend``), each in a fresh copy of the project, and prints each run's
wall seconds, the seconds of its extraction and training jobs (Snakemake's benchmarks), the mean
final validation accuracy of every mode, and the JAX/TensorFlow ratio of each.

    ./run bench backend_demo.py [--cores N] [--backends tensorflow jax] [--keep]
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
from project_copy import copy_project, keep_or_remove


def run(project: Path, backend: str, cores: int) -> float:
    """Wall seconds of the demo under backend in project."""
    overlay = project / "backend.yaml"
    overlay.write_text(yaml.safe_dump({"software": {"backend": backend}}))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", str(cores),
                             "--configfile", str(overlay)], cwd=project, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{backend}: snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def job_seconds(project: Path, folder: str) -> float:
    """Wall seconds of every job whose benchmark lies below results/benchmarks/<folder>."""
    files = list((project / "results/benchmarks" / folder).rglob("*.tsv"))
    return float(sum(pd.read_csv(f, sep="\t")["s"].iloc[0] for f in files))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--keep", action="store_true", help="keep the project copies and print where they are")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="augcache-backends-"))
    rows, accuracy = [], {}
    for backend in args.backends:
        project = copy_project(work / backend)
        wall = run(project, backend, args.cores)
        modes = pd.read_csv(project / "results/report/modes.csv")
        accuracy[backend] = modes.set_index(modes["mode"] + modes["k"].fillna(0).astype(int).astype(str).radd(" K="))[
            "final_val_accuracy_mean"]
        rows.append({"backend": backend, "wall s": wall, "extraction jobs s": job_seconds(project, "extract"),
                     "training jobs s": job_seconds(project, "train"),
                     "mean final val accuracy": float(modes["final_val_accuracy_mean"].mean())})
    table = pd.DataFrame(rows).set_index("backend")
    print(table.round(3).to_string())
    first = args.backends[0]
    for other in args.backends[1:]:
        print(f"\n{other}/{first}: " + ", ".join(f"{c} {table.loc[other, c] / table.loc[first, c]:.2f}"
                                                  for c in ("wall s", "extraction jobs s", "training jobs s")))
    print("\nfinal validation accuracy (mean over repeats) per mode and K:")
    print(pd.DataFrame(accuracy).round(3).to_string())
    keep_or_remove(work, work, args.keep)


if __name__ == "__main__":
    main()
