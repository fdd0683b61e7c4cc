"""The suite's scheduler: the workflow runs many tests share start together in the background
when the session starts, so that their jobs fill the cores while other tests run, and a test that
reads one waits for it to finish (a second wave, Later, starts when the first has ended); tests are
ordered so that those reading no shared run go first; each test is marked with its tier.

Also the project copy every workflow test runs in (Workflow). conftest.py holds the fixtures that
make the runs and names them here (SHARED_RUNS).
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PARTS = ("Snakefile", "workflow", "scripts", "augcache", "config", "profiles", "envs")
# A local workflow run: two jobs at once, each with the 2 threads a 2-core run gives it (so results
# equal those of any run whose jobs get 2 threads), and two GPU slots.
LOCAL_RUN = ("--cores", "4", "--max-threads", "2", "--resources", "gpu=2")


class Workflow:
    """A copy of the project in a temp folder, run with an overlay config."""

    def __init__(self, root: Path, finished: "Workflow | None" = None, env: dict | None = None):
        """root: where the copy goes. finished: copy that project instead, with its results and
        Snakemake's records of them (times and hard links kept, as results/reuse links outputs),
        for a test that changes a finished run without changing it for the others. env: the
        environment Snakemake runs in (default: this process's)."""
        self.root = root
        self.env = env if env is not None else (finished.env if finished is not None else None)
        if finished is not None:
            root.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-a", str(finished.root), str(root)], check=True)
            return
        root.mkdir(parents=True)
        for part in PROJECT_PARTS:
            src = ROOT / part
            if src.is_dir():
                shutil.copytree(src, root / part, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, root / part)

    def _command(self, config: dict, args, local: bool) -> list[str]:
        overlay = self.root / "overlay.yaml"
        overlay.write_text(yaml.safe_dump(config))
        return [sys.executable, "-m", "snakemake", *args, *(LOCAL_RUN if local else ()), "--configfile",
                str(overlay)]

    def run(self, config: dict, *args: str, check: bool = True, local: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """snakemake ARGS with config as overlay; local runs get LOCAL_RUN's cores and GPU slots."""
        result = subprocess.run(self._command(config, args, local), cwd=self.root, capture_output=True, text=True,
                                timeout=timeout, env=self.env)
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
        return result

    def start(self, config: dict, *args: str) -> "Started":
        """Workflow.run in the background: the returned run is waited for with Started.wait."""
        out = open(self.root / "snakemake.out", "w")
        process = subprocess.Popen(self._command(config, args, True), cwd=self.root, stdout=out,
                                   stderr=subprocess.STDOUT, text=True, env=self.env)
        return Started(process, out, self.root / "snakemake.out")

    def path(self, relative: str) -> Path:
        return self.root / relative

    def clone(self, root: Path) -> "Workflow":
        return Workflow(root, finished=self)


# Every workflow run started in the background this session, in the order started.
BACKGROUND: list[Started] = []


class Started:
    """A workflow run going on in the background (see Workflow.start)."""

    def __init__(self, process: subprocess.Popen, out, output: Path):
        self.process, self.out, self.output = process, out, output
        BACKGROUND.append(self)

    def wait(self) -> None:
        """Wait for the run; AssertionError with its output's tail when it failed."""
        returncode = self.process.wait()
        self.out.close()
        if returncode != 0:
            raise AssertionError(f"snakemake failed:\n{self.output.read_text()[-8000:]}")


class Later:
    """Workflow runs made in the background one after another (Workflow.run's arguments: config,
    args, options) once every background run started before this one has ended: a second wave,
    whose jobs use the cores that the tests reading the first wave, one at a time, leave idle.
    steps: instead of runs, a function called then (it makes its own runs: a clone of a finished
    run, changed, for a test that would otherwise change it while the tests run one at a time)."""

    def __init__(self, flow: Workflow | None, *runs: tuple[dict, tuple, dict], steps=None):
        self.flow, self.runs, self.steps, self.failure = flow, runs, steps, None
        self.before = list(BACKGROUND)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for started in self.before:
            started.process.wait()
        if self.steps is not None:
            try:
                self.steps()
            except Exception as err:  # a failed step: its test reports it
                self.failure = f"{type(err).__name__}: {err}"
            return
        for config, args, options in self.runs:
            try:
                self.flow.run(config, *args, **options)
            except Exception as err:  # a failed or timed-out run, or one that could not start
                self.failure = f"{' '.join(args) or 'the workflow'}: {type(err).__name__}: {err}"
                return

    def wait(self) -> None:
        """Wait for the runs; AssertionError with the failed run's output when one failed."""
        self.thread.join()
        if self.failure:
            raise AssertionError(self.failure)


# The shared runs, in the order their tests run: {the fixture a test reads: the fixture that starts
# the run in the background}.
SHARED_RUNS = {"float32_runs": "float32_started", "full_run": "full_started", "swept": "swept_started",
               "varied": "varied_started", "finetuned": "finetune_started", "hub_run": "hub_started", "jax_runs": "jax_started",
               "folded": "folded_started", "torch_run": "torch_started", "slurm_run": "slurm_started"}


def shared_runs_read(item) -> set[str]:
    """The shared runs a test reads: fixtures it names, and parameters that name one (a test run
    once per backend's run, which it asks for with request.getfixturevalue)."""
    names = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        names |= {value for value in callspec.params.values() if isinstance(value, str)}
    return names & set(SHARED_RUNS)


# The suite's tiers, one marker each (./run tests -m unit): unit tests run no workflow; workflow
# tests run Snakemake on tiny data (or read a shared run); backend tests read the runs under JAX or
# torch; slurm tests start the test cluster. Each test gets its tier from what it uses.
TIERS = ("unit", "workflow", "backend", "slurm")


def tier(item) -> str:
    """The tier of a test: the fixtures it uses (its closure), else whether its code runs the
    workflow (a Workflow of its own, or snakemake itself)."""
    names = set(getattr(item, "fixturenames", ())) | shared_runs_read(item)
    if names & {"cluster", "slurm_run", "slurm_started"}:
        return "slurm"
    if names & {"jax_runs", "jax_started", "torch_run", "torch_started"}:
        return "backend"
    if names & (set(SHARED_RUNS) | set(SHARED_RUNS.values()) | {"workflow"}):
        return "workflow"
    function = getattr(item, "function", None)
    source = inspect.getsource(function) if function is not None else ""
    return "workflow" if "Workflow(" in source or "snakemake" in source else "unit"


def mark_and_order(items) -> None:
    """Each test marked with its tier (before -m selects); tests that read no shared run go first,
    while the shared runs compute in the background; then those of each shared run, in
    SHARED_RUNS' order (the order of their files within each)."""
    import pytest

    for item in items:
        item.add_marker(getattr(pytest.mark, tier(item)))
    order = list(SHARED_RUNS)

    def rank(item) -> int:
        needed = [order.index(name) for name in shared_runs_read(item)]
        return max(needed) + 1 if needed else 0

    items.sort(key=rank)
