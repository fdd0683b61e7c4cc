"""What the workflow's planning costs at a million images, and what each job costs per image as N grows.

--plan N (default 1,000,000): a CSV listing of N image paths over --classes classes (hard links of
one small PNG per class, so the files exist and cost no disk), K = --epochs cached epochs in
--shards shards each; prints, for `snakemake -n` (the whole workflow planned, nothing run) and for
`augcache estimate`, the wall seconds and the peak memory of the process, the number of jobs
planned, and the estimated disk of the run.

--run N1 N2 …: the workflow itself (the demo's images and base at 32 px, K = 5, modes cached and
noaug, 2 head epochs) at each N training images, and a table with every rule's seconds per image
(its start-up apart: the same rule's seconds at --startup-n images are subtracted; none where the
rest is under a second, within the start-up's noise) and peak memory, and the ratio of each rule's
per-image cost at the largest N to that at the smallest.

    ./run bench scale.py --plan 1000000
    ./run bench scale.py --run 1000 10000 [100000] [--cores N] [--keep]
    ./run bench scale.py --report /tmp/augcache-scale-run-…   # the table again, of runs kept
"""

from __future__ import annotations

import argparse
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


def peak_rss_mb(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak resident MB of the process and its children, output) of a command."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024
    return wall, peak, result.stdout + result.stderr


def write_listing(folder: Path, n: int, classes: int, seed: int = 0) -> Path:
    """images/c{j}/x{i}.png, hard links of one 32 px PNG per class, and listing.csv naming them
    (a tenth of them validation images)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    lines = ["path,label,split"]
    for j in range(classes):
        directory = folder / "images" / f"c{j:04d}"
        directory.mkdir(parents=True)
        first = directory / f"x{j}.png"  # image i is of class i mod classes
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(first)
        for i in range(j, n, classes):
            if i != j:
                os.link(first, directory / f"x{i}.png")
            lines.append(f"images/c{j:04d}/x{i}.png,c{j:04d},{'val' if i % 10 == 0 else 'train'}")
    listing = folder / "listing.csv"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def plan(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="augcache-scale-plan-"))
    start = time.perf_counter()
    listing = write_listing(work / "data", args.plan, args.classes)
    print(f"listing of {args.plan:,} images in {args.classes} classes written in {time.perf_counter() - start:.0f} s")
    project = copy_project(work / "project")
    overlay = project / "scale.yaml"
    overlay.write_text(yaml.safe_dump({
        "data": {"csv": str(listing), "image_size": [32, 32]},
        "cache": {"k": args.epochs, "shards_per_epoch": args.shards},
        "train": {"modes": ["cached", "noaug"], "sweep_k": [], "repeats": 1},
    }))
    rows = []
    for name, command in (
        ("snakemake -n", [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "2",
                          "--configfile", str(overlay)]),
        ("augcache estimate", [sys.executable, "-m", "augcache.cli", "estimate", "config/config.yaml", str(overlay),
                               "--json"]),
    ):
        wall, peak, out = peak_rss_mb(command, project)
        row = {"step": name, "wall s": round(wall, 1), "peak MB": round(peak)}
        if name == "snakemake -n":
            jobs = re.search(r"^total\s+(\d+)", out, re.M)
            row["jobs"] = int(jobs.group(1)) if jobs else None
        else:
            import json

            estimate = json.loads(out[out.index("{"):out.rindex("}") + 1])
            row["estimated disk GB"] = round((estimate["total_bytes"] + estimate["hdf5_metadata_at_most_bytes"]) / 1e9, 1)
        rows.append(row)
    print(pd.DataFrame(rows).set_index("step").to_string())
    keep_or_remove(work, project, args.keep)


def rule_of(project: Path, benchmark: str) -> str:
    """A job's row of the table: its benchmark's path below results/benchmarks, numbers as #."""
    relative = Path(benchmark).resolve().relative_to((project / "results/benchmarks").resolve()).as_posix()
    return re.sub(r"\d+", "#", relative.removesuffix(".tsv"))


def planned_mb(project: Path) -> dict[str, float]:
    """The memory (mem_mb) each job declared, by rule as in :func:`rule_of`, from Snakemake's log
    of the run (its job blocks name the benchmark and the resources); jobs without one are absent."""
    log = max((project / ".snakemake/log").glob("*.snakemake.log"))
    planned = {}
    for block in re.split(r"^\[.*\]$", log.read_text(), flags=re.M):  # each job's block starts with its time
        benchmark = re.search(r"^\s+benchmark: (\S+)", block, re.M)
        memory = re.search(r"^\s+resources: .*\bmem_mb=(\d+)", block, re.M)
        if benchmark and memory:
            rule = rule_of(project, project / benchmark.group(1))
            planned[rule] = max(planned.get(rule, 0.0), float(memory.group(1)))
    return planned


def bench_table(project: Path) -> pd.DataFrame:
    """Seconds, peak MB and declared MB of every job, by rule (:func:`rule_of`)."""
    rows = []
    for path in (project / "results/benchmarks").rglob("*.tsv"):
        bench = pd.read_csv(path, sep="\t").iloc[0]
        rows.append({"rule": rule_of(project, path), "s": float(bench["s"]), "max_rss MB": float(bench["max_rss"])})
    table = pd.DataFrame(rows).groupby("rule").agg({"s": "mean", "max_rss MB": "max"})
    table["plan MB"] = pd.Series(planned_mb(project))
    return table


def run(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="augcache-scale-run-"))
    planning = {}
    for n in [args.startup_n, *args.run]:
        project = copy_project(work / f"n{n}")
        overlay = project / "scale.yaml"
        per_class = max(1, n // 4)
        overlay.write_text(yaml.safe_dump({
            "data": {"image_size": [32, 32]},
            "demo": {"image_size": 32, "train_per_class": per_class, "val_per_class": max(1, per_class // 10),
                     "base_pretext_per_class": 50, "base_epochs": 1},
            "cache": {"k": 5, "batch_size": 256},
            "head": {"epochs": 2, "batch_size": 256, "hidden_units": [32]},
            "train": {"modes": ["cached", "noaug"], "sweep_k": [], "repeats": 1},
        }))
        wall, peak, _ = peak_rss_mb([sys.executable, "-m", "snakemake", "-n", "--quiet", "--configfile",
                                     str(overlay)], project)
        planning[n] = (wall, peak)
        (project / "planning.txt").write_text(f"{wall} {peak}\n")
        result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores",
                                 str(args.cores), "--configfile", str(overlay)], cwd=project, capture_output=True,
                                text=True)
        if result.returncode != 0:
            sys.exit(f"N={n}: snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    report(work, args.startup_n)
    keep_or_remove(work, work, args.keep)


def report(work: Path, startup_n: int) -> None:
    """The table of the runs in `work` (a folder n<N> for each N, n<startup_n> the start-up's)."""
    tables, planning = {}, {}
    for project in work.glob("n*"):
        n = int(project.name[1:])
        tables[n] = bench_table(project)
        planning[n] = tuple(float(v) for v in (project / "planning.txt").read_text().split())
    startup = tables.pop(startup_n)["s"]
    ns = sorted(tables)
    # a job whose work takes under a second beyond its start-up is within the noise of that start-up:
    # no per-image cost is given for it (NaN)
    per_image = pd.DataFrame({n: ((tables[n]["s"] - startup) / n).where(tables[n]["s"] - startup >= 1.0)
                              for n in ns})
    out = per_image.rename(columns=lambda n: f"s/image N={n}")
    for n in ns:
        out[f"peak MB N={n}"] = tables[n]["max_rss MB"]
    out[f"plan MB N={ns[-1]}"] = tables[ns[-1]]["plan MB"]
    # the per-image cost at the largest N against that at the smallest N where it is measured, for
    # the jobs measured at two sizes or more
    first = per_image.apply(lambda row: row.first_valid_index(), axis=1)
    measured = per_image[ns[-1]].notna() & (first < ns[-1])
    out["ratio"] = (per_image[ns[-1]] / per_image.apply(lambda row: row.dropna().iloc[0] if row.notna().any()
                                                        else float("nan"), axis=1)).where(measured)
    out["ratio from N"] = first.where(measured)
    pd.set_option("display.width", 200)
    print(out.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"\nratio: s/image at N={ns[-1]} over s/image at the smallest N where it is measured (ratio from N); "
          "plan MB: the memory the job declared (mem_mb), none where it declares none")
    print("\nplanning (snakemake -n): " + ", ".join(f"N={n}: {w:.1f} s, {p:.0f} MB"
                                                  for n, (w, p) in sorted(planning.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=int, metavar="N", help="plan a run of N listed images")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--run", type=int, nargs="+", metavar="N", help="run the workflow at each N")
    parser.add_argument("--report", type=Path, metavar="DIR", help="the table again, of runs kept with --keep")
    parser.add_argument("--startup-n", type=int, default=40, help="training images of the start-up run")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--keep", action="store_true", help="keep the project copies and print where they are")
    args = parser.parse_args()
    if args.plan:
        plan(args)
    if args.run:
        run(args)
    if args.report:
        report(args.report, args.startup_n)
    if not (args.plan or args.run or args.report):
        parser.error("give --plan N, --run N1 N2 … or --report DIR")


if __name__ == "__main__":
    main()
