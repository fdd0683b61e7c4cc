"""What a rerun costs once every output is keyed by what made it (augcache.jobs.reuse).

On the built-in demo, in a fresh copy of the project with the demo images as a user's data folder:
the wall time of a fresh run, of a rerun after touching every image (same bytes, new modification
times: the index and the pixel store are made again, every feature store and run is reused), and
of a rerun after deleting a damaged pixel store (decoded again). Prints each, and each rerun's share of the fresh run
(the target: at most 0.25).

    ./run bench rerun_cost.py [--cores N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from project_copy import ROOT, copy_project, keep_or_remove



def snakemake(project: Path, overlay: Path, cores: int, *args: str) -> float:
    """Wall seconds of one workflow run (every target of the config)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", *args, "--profile", "profiles/local", "--cores",
                             str(cores), "--configfile", str(overlay)], cwd=project, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def reused_jobs(project: Path) -> tuple[int, int]:
    """(extraction and training logs that say reused, all of them)."""
    logs = [p for p in (project / "results/logs").rglob("*.log")
            if "/extract/" in str(p) or "/train/" in str(p)]
    return sum("reused" in p.read_text() for p in logs), len(logs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--keep", action="store_true", help="keep the project copy and print where it is")
    args = parser.parse_args()

    from augcache.data.demo import write_demo_images

    work = Path(tempfile.mkdtemp(prefix="augcache-rerun-"))
    project = copy_project(work / "project")
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    demo = config["demo"]
    images = work / "images"
    write_demo_images(images, demo["image_size"], demo["train_per_class"], demo["val_per_class"], config["seed"])
    overlay = work / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"dir": str(images)}}))

    fresh = snakemake(project, overlay, args.cores)
    print(f"fresh run: {fresh:.1f} s")
    for image in images.rglob("*"):
        if image.is_file():
            os.utime(image)  # same bytes, a new modification time
    touched = snakemake(project, overlay, args.cores)
    print(f"rerun after touching every image: {touched:.1f} s ({touched / fresh:.2f} of the fresh run; "
          "reused %d of %d extraction and training jobs)" % reused_jobs(project))
    # a damaged pixel store, deleted as its refusal advises: its reuse entry shares its bytes and
    # fails too (removed here), and the rerun that needs it decodes every image again
    pixels = project / "results/dataset/pixels.h5"
    for entry in (project / "results/reuse/index_dataset").iterdir():
        if any(part.samefile(pixels) for part in entry.iterdir() if part.name != "entry.json"):
            shutil.rmtree(entry)
    pixels.unlink()
    deleted = snakemake(project, overlay, args.cores, "--forcerun", "index_dataset")
    print(f"rerun after deleting the pixel store: {deleted:.1f} s ({deleted / fresh:.2f} of the fresh run; "
          "reused %d of %d extraction and training jobs)" % reused_jobs(project))
    within = touched <= 0.25 * fresh and deleted <= 0.25 * fresh
    print(f"both reruns at most 0.25 of the fresh run: {'yes' if within else 'NO'}")
    keep_or_remove(work, project, args.keep)


if __name__ == "__main__":
    main()
