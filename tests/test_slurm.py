"""The tiny pipeline on a real single-node SLURM cluster, compared with a local run.

The cluster (tests/slurm/cluster.sh) declares two GPUs; SLURM itself must keep GPU jobs to two at
a time, since the cluster run passes no Snakemake resource limit.
"""

import re
import subprocess
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np

GPU_RULES = ("extract_epoch", "extract_val", "extract_noaug")
LOCAL_RULES = ("check_conv_base", "index_dataset", "write_manifest", "merge_epochs", "export_model",
               "make_report")


def jobcomp(cluster_dir: Path) -> dict[str, dict]:
    """SLURM's own record of finished jobs: job id -> fields."""
    jobs = {}
    for line in (cluster_dir / "jobcomp.log").read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        jobs[fields["JobId"]] = fields
    return jobs


def job_line(log: Path) -> tuple[str, dict]:
    """(SLURM job id, GPU environment) a job wrote to its log."""
    match = re.search(r"SLURM job (\S+) on \S+: (.*)", log.read_text())
    assert match, f"{log} does not say which SLURM job ran it"
    return match.group(1), dict(re.findall(r"(\w+)=(\S*)", match.group(2)))


def most_at_once(intervals) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


def weights(path: Path) -> list[bytes]:
    import keras

    return [np.asarray(w).tobytes() for w in keras.saving.load_model(path).get_weights()]


def test_pipeline_on_slurm_equals_a_local_run(cluster, full_run, slurm_run):
    """One run (conftest's slurm_run) covers both ways of submitting: the extraction epochs as one
    job array, every other job as an sbatch of its own."""
    _, local_run = full_run
    config, flow = slurm_run
    epochs = config["cache"]["k"]

    # every GPU job ran as its own SLURM job, granted exactly one GPU
    finished = jobcomp(cluster)
    gpu_jobs = []
    for log in sorted(flow.path("results/logs/extract").glob("*.log")):
        job_id, env = job_line(log)
        assert re.fullmatch(r"\d+", env.get("CUDA_VISIBLE_DEVICES", "")), f"{log}: {env}, expected one device"
        granted = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        assert re.search(r"Tres\w*=gres[:/]gpu[:=]1\b", granted), f"{log}: SLURM job {job_id}:\n{granted}"
        gpu_jobs.append(job_id)
    assert len(gpu_jobs) == epochs + 2  # the epochs, val, noaug
    assert len(set(gpu_jobs)) == epochs + 2
    # the epochs: one sbatch call, tasks <array id>_<task>; the other GPU jobs: one sbatch each
    epoch_logs = [p.name for p in flow.path(".snakemake/slurm_logs/rule_extract_epoch").rglob("*.log")]
    assert len(epoch_logs) == epochs and all(re.fullmatch(r"\d+_\d+\.log", n) for n in epoch_logs), epoch_logs
    assert len({n.split("_")[0] for n in epoch_logs}) == 1, epoch_logs
    for rule in ("extract_val", "extract_noaug", "train_cached", "train_noaug"):
        logs = [p.name for p in flow.path(f".snakemake/slurm_logs/rule_{rule}").rglob("*.log")]
        assert logs and all(re.fullmatch(r"\d+\.log", n) for n in logs), (rule, logs)

    # SLURM kept GPU jobs to the two GPUs it has
    def when(job_id, field):
        return datetime.fromisoformat(finished[job_id][field])

    intervals = [(when(j, "StartTime"), when(j, "EndTime")) for j in gpu_jobs]
    assert most_at_once(intervals) <= 2

    # light rules ran on the submitting host
    logged_rules = {p.name.removeprefix("rule_") for p in flow.path(".snakemake/slurm_logs").iterdir()}
    assert {"extract_epoch", "extract_val", "extract_noaug", "train_cached", "train_noaug"} <= logged_rules
    assert not logged_rules & set(LOCAL_RULES)

    # the same numbers as on the workstation
    for store in [f"results/features/train/epoch_{e}.h5" for e in range(epochs)] + \
            ["results/features/val.h5", "results/features/train_noaug.h5"]:
        with h5py.File(flow.path(store)) as a, h5py.File(local_run.path(store)) as b:
            assert a["features"][:].tobytes() == b["features"][:].tobytes(), store
    for run in (f"cached/k{epochs}_r0", "noaug/r0", "featureaug/r0", f"hybrid/k{epochs}_r0"):
        head = f"results/train/{run}/head.keras"
        assert weights(flow.path(head)) == weights(local_run.path(head)), head
    for run in ("featureaug/r0", f"hybrid/k{epochs}_r0"):
        drawn = f"results/train/{run}/feature_augment.csv.gz"
        assert flow.path(drawn).read_bytes() == local_run.path(drawn).read_bytes(), drawn
    assert flow.path("results/report/report.html").stat().st_size > 10_000
