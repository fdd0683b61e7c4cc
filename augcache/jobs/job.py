"""The start and the end of every rule script: its log, its device, the settings every job
shares, and for the heavy jobs the reuse of outputs computed before (see :mod:`augcache.jobs.reuse`)."""

from __future__ import annotations

import atexit
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from augcache.core import backend
from augcache.core.atomic import write_text_atomic
from augcache.core.log import log_to
from augcache.data.images import set_max_image_pixels
from augcache.jobs.devices import assign_device
from augcache.jobs.table import benchmark_of_log, cost_record, reuse_kind, reuse_record

log = logging.getLogger("augcache.jobs.job")

# the key of this job's outputs, when its script can reuse them (see start_job)
_reusable: Keyed | None = None


def script_kind() -> str:
    """The rule script this process runs (Snakemake runs a copy named ``tmp….<script>.py``)."""
    return Path(sys.argv[0]).name.removesuffix(".py").split(".")[-1]


@dataclass(frozen=True)
class Keyed:
    """Outputs of a job keyed as a job of `kind` (see :mod:`augcache.jobs.reuse`): the whole job's,
    or one part's of a job that computes several (an epoch of a job of several epochs)."""

    kind: str
    key: str
    fields: dict
    outputs: tuple
    told: str | None  # why the job computes whatever entry exists (forced, reuse false)


def reuse_or_key(snakemake, kind: str, outputs, params: dict | None = None, wildcards: dict | None = None,
                 inputs=None) -> tuple[Keyed, dict | None]:
    """(the outputs' key, the record of the entry put in place, or None when they must be computed):
    the one way every job, and every part of one, reuses. params, wildcards and inputs (paths in
    order) replace the job's own where given."""
    from augcache.jobs.reuse import rekey_former, reuse

    key, fields = key_of(snakemake, kind, params, wildcards, inputs)
    told = told_to_compute(snakemake)
    keyed = Keyed(kind, key, fields, tuple(map(str, outputs)), told)
    if told:
        return keyed, None
    rekey_former(kind, key, fields)  # an entry of the version before this one, where there is one
    return keyed, reuse(kind, key, list(keyed.outputs))


def epoch_parts(snakemake) -> list[tuple]:
    """(epoch, its manifest, its store, its key, the record of its entry when it was reused) of each
    epoch of a job of several epochs (cache.epochs_per_job). Each is keyed as the job of that one
    epoch (:data:`augcache.jobs.table.JOBS`' ``extract_epochs`` is kept as ``extract_epoch``): the
    params without the list of epochs, its epoch, and the job's inputs with its own manifest in the
    place of the list, which both rules name last. No key (None) where the pixels come from image
    files the job decodes."""
    from augcache.jobs.table import JOBS

    params = dict(snakemake.params.items())
    epochs, manifests = params.pop("epochs"), input_files(snakemake, "manifests")
    shared = list(snakemake.input)[: -len(manifests)]
    if list(snakemake.input)[len(shared):] != manifests:
        raise ValueError(f"rule {snakemake.rule}: its manifests must be its last inputs, as a job of one epoch's")
    parts = []
    for epoch, manifest, out in zip(epochs, manifests, snakemake.output, strict=True):
        if "pixels" not in snakemake.input.keys():
            parts.append((epoch, manifest, out, None, None))
            continue
        keyed, record = reuse_or_key(snakemake, JOBS["extract_epochs"].reuse, [out], params=params,
                                     wildcards={"epoch": str(epoch)}, inputs=[*shared, manifest])
        parts.append((epoch, manifest, out, keyed, record))
    return parts


def keep(keyed: Keyed, cost: dict) -> None:
    """Keep computed outputs under their key, with what computing them cost."""
    from augcache.jobs.reuse import store

    store(keyed.kind, keyed.key, keyed.fields, list(keyed.outputs), cost=cost, replace=bool(keyed.told))
    log.info("outputs kept as %s", keyed.key)


def input_files(snakemake, name: str) -> list[str]:
    """The paths of named input `name` as a list (none when the rule has no such input)."""
    value = snakemake.input.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def job_base(snakemake):
    """The job's conv base (:class:`augcache.base.conv_base.BaseSpec`): what params.base configures, its
    files read from the job's ``base_files`` input (below a variant's folder in a variant)."""
    from augcache.base.conv_base import BaseSpec
    from augcache.core.paths import base_with_files

    spec = BaseSpec.from_config(base_with_files(snakemake.params.base))
    return spec.located(input_files(snakemake, "base_files"))


def job_pixels(snakemake):
    """Where an extraction job's pixels come from (:func:`augcache.data.pixels.open_pixels`): the pixel
    store when the job has one as input, else the image files of the index."""
    from augcache.data.pixels import open_pixels

    return open_pixels(snakemake.params.pixel_size, snakemake.params.base["resize"], snakemake.input.get("pixels"),
                       snakemake.input.index)


def check_disk(snakemake, output) -> None:
    """Before any feature is computed: the run's stores still to write (from the config, not
    params: the check changes no result) must fit the disk of `output`, one of the job's stores."""
    from augcache.jobs.plan import check_run_fits, planned_stores

    check_run_fits(planned_stores(snakemake.config, snakemake.input.index, snakemake.input.base, output)[1], output)


def uses_gpu(snakemake) -> bool:
    return int(snakemake.resources.get("gpu", 0) or 0) > 0


def process_started() -> float:
    """When this process started (Python's start included), in seconds since the epoch."""
    try:
        import psutil

        return psutil.Process().create_time()
    except (ImportError, OSError):
        return _IMPORTED


def process_cost() -> dict:
    """What this process has cost so far: wall seconds since it started (Python's start
    included) and its peak resident memory in MiB. The one clock of every job's cost: what a
    computed job records (:func:`write_cost_record`) and what a reuse entry keeps."""
    import resource

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": round(time.time() - process_started(), 3), "max_rss_mb": round(rss_kib / 1024, 1)}


_IMPORTED = time.time()


def job_reuse_record(snakemake) -> Path:
    """Where this job says which outputs it reused (beside its benchmark, see
    :func:`augcache.report.costs.account`)."""
    return Path(reuse_record(benchmark_of_log(snakemake.log[0])))


_cost_recorded = False


def write_cost_record(snakemake, cost: dict | None = None) -> None:
    """Record what this job's run cost by the process clock (cost, or what it has cost so far),
    with when it started and ended, beside its benchmark (see :func:`augcache.report.costs.job_cost`):
    the same clock as the cost a reuse entry keeps, so a reused job and a computed one are told
    in one unit. Written once: by :func:`finish_job` for a job that keeps its outputs (the cost it
    keeps), else when the process ends."""
    global _cost_recorded
    if _cost_recorded:
        return
    _cost_recorded = True
    cost = cost or process_cost()
    started = process_started()
    record = {**cost, "started": round(started, 3), "ended": round(started + cost["seconds"], 3)}
    write_text_atomic(cost_record(benchmark_of_log(snakemake.log[0])), json.dumps(record, indent=1))


def write_reuse_record(snakemake, reused: list[dict], whole_job: bool) -> None:
    """Record the entries this job reused and what computing them cost. whole_job: every output
    came from them (the job's cost is theirs); otherwise their cost adds to the job's own."""
    costs = [r["cost"] for r in reused if r.get("cost")]
    known = len(costs) == len(reused)  # an entry may have been stored without its cost
    record = {
        "keys": [r["key"] for r in reused],
        "whole_job": whole_job,
        "computed_seconds": sum(c["seconds"] for c in costs) if known else None,
        "computed_max_rss_mb": max(c["max_rss_mb"] for c in costs) if known else None,
    }
    write_text_atomic(job_reuse_record(snakemake), json.dumps(record, indent=1))


def told_to_compute(snakemake) -> str | None:
    """Why this job computes whatever entries exist (see :func:`augcache.jobs.reuse.why_compute`), or
    None."""
    from augcache.jobs.reuse import why_compute

    return why_compute(snakemake.rule, snakemake.output, snakemake.config.get("reuse", True))


def key_of(snakemake, kind: str, params: dict | None = None, wildcards: dict | None = None,
           inputs=None) -> tuple[str, dict]:
    """(key, fields) of this job's outputs (see :func:`augcache.jobs.reuse.job_key`): its params,
    wildcards, inputs by position, threads and device, as a job of `kind`; params, wildcards and
    inputs replace the job's own where given (a shard keyed as its whole epoch's job, an epoch of
    a job of several)."""
    from augcache.jobs.reuse import job_key, positional_inputs

    return job_key(kind, dict(snakemake.params.items()) if params is None else params,
                   dict(snakemake.wildcards.items()) if wildcards is None else wildcards,
                   positional_inputs(snakemake.input if inputs is None else inputs), threads=snakemake.threads,
                   gpu=uses_gpu(snakemake))


def start_job(snakemake, reusable: bool = False) -> None:
    """Send the job's output to its log, choose its Keras backend and give it its device (one GPU
    when its rule declares ``gpu=1``, none otherwise) before Keras is imported, and apply the
    shared settings.

    reusable: the job's outputs are a function of its key (see :mod:`augcache.jobs.reuse`): when an
    entry of that key exists, its outputs are put in place and the process ends here; otherwise
    :func:`finish_job` stores them once they are made. A job Snakemake was told to run again, or
    any job with reuse false, computes and replaces the entry."""
    global _reusable
    log_to(snakemake.log[0])
    # the run's backend (software.backend, or the KERAS_BACKEND Snakemake was started with)
    backend.use(backend.chosen(snakemake.config["software"].get("backend")))
    log.info("job %s started", snakemake.rule)
    atexit.register(log.info, "job %s ended", snakemake.rule)
    atexit.register(write_cost_record, snakemake)
    job_reuse_record(snakemake).unlink(missing_ok=True)
    if reusable:
        keyed, record = reuse_or_key(snakemake, reuse_kind(script_kind()), snakemake.output)
        if record is not None:
            write_reuse_record(snakemake, [record], whole_job=True)
            sys.exit(0)
        told = keyed.told
        log.info("computing %s (%s)", keyed.key, f"{told}: the entry is replaced" if told else "no entry of this key")
        _reusable = keyed
    assign_device(uses_gpu(snakemake))
    set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])


def finish_job(snakemake) -> None:
    """Keep the finished outputs of a reusable job under their key (see :func:`start_job`), with
    what computing them cost."""
    if _reusable is not None:
        cost = process_cost()
        keep(_reusable, cost)
        write_cost_record(snakemake, cost)
