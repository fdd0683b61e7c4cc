"""Each feature computed once: outputs keyed by what made them (results/reuse), reused instead of
computed again after a rerun that changes nothing they depend on."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from augcache.jobs.gc import collect_garbage
from conftest import LOCAL_RUN
from test_faults import job_pids


def extraction_logs(flow) -> dict[str, str]:
    return {str(p.relative_to(flow.path("results/logs"))): p.read_text()
            for p in flow.path("results/logs").rglob("extract/*.log")}


def store_inodes(flow) -> dict[str, tuple]:
    """(inode, size) of every feature store: the same inode is the same file, not a recomputed one."""
    return {str(p.relative_to(flow.root)): (p.stat().st_ino, p.stat().st_size)
            for p in flow.path("results/features").rglob("*.h5")}


def assert_reused_not_computed(logs: dict[str, str]) -> None:
    assert logs
    for name, text in logs.items():
        assert re.search(r"reused [0-9a-f]{64}", text), f"{name} computed again:\n{text[-1500:]}"
        assert "img/s" not in text, name


@pytest.fixture
def cache_copy(float32_runs, tmp_path):
    """A clone of the shared float32 cache (its results/reuse included)."""
    config, (flow, _) = float32_runs
    return config, flow.clone(tmp_path / "project")


def test_touching_every_image_computes_no_feature(cache_copy, tiny_data):
    config, flow = cache_copy
    before = store_inodes(flow)
    images = [p for p in tiny_data.rglob("*.png")]
    times = {p: p.stat().st_mtime_ns for p in images}
    try:
        for image in images:  # the same bytes, a new modification time
            os.utime(image, ns=(times[image] + 10**9, times[image] + 10**9))
        dry = flow.run(config, "cache", "-n")
        assert "rule index_dataset" in dry.stdout  # the listing changed: the index is made again
        for log in flow.path("results/logs/extract").rglob("*.log"):
            log.unlink()
        flow.run(config, "cache")
    finally:
        for image, ns in times.items():
            os.utime(image, ns=(ns, ns))
    assert_reused_not_computed(extraction_logs(flow))
    after = store_inodes(flow)
    assert {k: v for k, v in after.items() if "train.h5" not in k} == \
        {k: v for k, v in before.items() if "train.h5" not in k}


def test_deleting_a_damaged_pixel_store_rebuilds_it_and_reuses_every_feature_store(cache_copy):
    """The pixel store damaged in place (its reuse entry shares its bytes, so it fails too) and
    deleted, as its refusal advises; the rerun that needs it (one more epoch) decodes it again, and
    every store made before is reused."""
    config, flow = cache_copy
    import h5py

    pixels = flow.path("results/dataset/pixels.h5")
    with h5py.File(pixels, "r") as handle:
        digest = handle.attrs["pixels_sha256"]
    data = bytearray(pixels.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pixels.write_bytes(bytes(data))
    pixels.unlink()
    for log in flow.path("results/logs/extract").rglob("*.log"):
        log.unlink()
    k = config["cache"]["k"]
    flow.run(dict(config, cache=dict(config["cache"], k=k + 1)), "cache")
    index_log = flow.path("results/logs/index_dataset.log").read_text()
    assert "fails its sha256" in index_log and "reused" not in index_log
    with h5py.File(pixels, "r") as handle:
        assert handle.attrs["pixels_sha256"] == digest
    logs = extraction_logs(flow)
    assert "img/s" in logs.pop(f"extract/epoch_{k}.log")  # the new epoch
    assert_reused_not_computed(logs)


def test_a_reuse_entry_whose_bytes_fail_their_checksum_is_computed_again(cache_copy):
    config, flow = cache_copy
    import h5py
    import numpy as np

    store = flow.path("results/features/train/epoch_1.h5")
    with h5py.File(store, "r") as handle:
        features = handle["features"][:]
    entry = next(p for p in flow.path("results/reuse/extract_epoch").glob("*/epoch_1.h5") if p.samefile(store))
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the entry and the output share their bytes: both are damaged
    entry.write_bytes(bytes(data))
    store.unlink()
    flow.run(config, "cache")
    log = flow.path("results/logs/extract/epoch_1.log").read_text()
    assert "fails its sha256" in log and "reused" not in log and "img/s" in log
    with h5py.File(store, "r") as handle:
        np.testing.assert_array_equal(handle["features"][:], features)


def test_a_store_finished_while_snakemake_is_killed_is_kept(cache_copy):
    """kill -9 of Snakemake itself as an extraction job finishes: the rerun keeps its store."""
    import signal
    import time

    import yaml

    config, flow = cache_copy
    more = dict(config, cache=dict(config["cache"], k=config["cache"]["k"] + 1))
    new_epoch = config["cache"]["k"]
    flow.path("overlay.yaml").write_text(yaml.safe_dump(more))
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "cache", *LOCAL_RUN, "--configfile",
                                str(flow.path("overlay.yaml"))], cwd=flow.root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    store = flow.path(f"results/features/train/epoch_{new_epoch}.h5")
    deadline = time.monotonic() + 300
    while not store.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # the job process finishes on its own
    process.wait()
    assert store.exists(), "the extraction did not finish"
    time.sleep(3)
    made = store.stat().st_ino
    flow.run(more, "--unlock")
    flow.run(more, "cache", "--rerun-incomplete")
    assert flow.path(f"results/features/train/epoch_{new_epoch}.h5").stat().st_ino == made or \
        "reused" in flow.path(f"results/logs/extract/epoch_{new_epoch}.log").read_text()
    assert "img/s" not in flow.path(f"results/logs/extract/epoch_{new_epoch}.log").read_text().split(
        "job extract_epoch started")[-1]


def test_a_job_snakemake_is_told_to_run_again_computes_and_replaces_its_entry(cache_copy):
    """--forcerun (and -R, --forceall, --force) means compute: the index job computes (after an image
    was replaced with the same size and time, the only way to say so) and replaces its entry; the
    jobs after it rerun and, their inputs' bytes unchanged, reuse theirs. reuse: false
    computes a job whose entry exists."""
    config, flow = cache_copy
    entries = list(flow.path("results/reuse/index_dataset").glob("*/entry.json"))
    assert len(entries) == 1
    before = entries[0].stat().st_ino
    for log in flow.path("results/logs/extract").rglob("*.log"):
        log.unlink()
    flow.run(config, "cache", "--forcerun", "index_dataset")
    index_log = flow.path("results/logs/index_dataset.log").read_text()
    assert "told to run it again" in index_log and not re.search(r"reused [0-9a-f]{64}", index_log)
    assert entries[0].is_file() and entries[0].stat().st_ino != before  # the entry was replaced
    assert_reused_not_computed(extraction_logs(flow))

    # spelled the former way (cache.reuse), which is still read
    no_reuse = dict(config, cache=dict(config["cache"], reuse=False))
    flow.path("results/features/train/epoch_1.h5").unlink()
    flow.run(no_reuse, "results/features/train/epoch_1.h5")
    log = flow.path("results/logs/extract/epoch_1.log").read_text()
    assert "reuse is false" in log and "img/s" in log and not re.search(r"reused [0-9a-f]{64}", log)
    # and a plain rerun reuses again, whatever was forced before
    flow.path("results/features/train/epoch_1.h5").unlink()
    flow.run(config, "results/features/train/epoch_1.h5")
    assert re.search(r"reused [0-9a-f]{64}", flow.path("results/logs/extract/epoch_1.log").read_text())
    # --force of a file target computes that file's job
    flow.run(config, "results/features/train/epoch_0.h5", "--force")
    log = flow.path("results/logs/extract/epoch_0.log").read_text()
    assert "told to run it again" in log and "img/s" in log


def test_gc_removes_only_what_no_output_uses(cache_copy):
    config, flow = cache_copy
    cache = flow.path("results/reuse")
    removed, _ = collect_garbage(cache, dry_run=True)
    assert removed == []  # every entry of a finished run is in use
    target = "results/features/train/epoch_0.h5"
    old = next(p for p in cache.glob("extract_epoch/*/epoch_0.h5") if p.samefile(flow.path(target))).parent
    float16 = dict(config, cache=dict(config["cache"], dtype="float16"))
    flow.run(float16, target)  # epoch 0 replaced by its float16 store: its float32 entry is unused
    unused, freed = collect_garbage(cache, dry_run=True)
    assert unused == [old] and freed > 0
    command = subprocess.run([Path(sys.executable).with_name("augcache"), "gc", "--workdir", flow.root],
                             capture_output=True, text=True)
    assert command.returncode == 0 and "1 unused entry" in command.stdout, command.stderr
    assert not old.exists()
    assert "Nothing to be done" in flow.run(float16, target, "-n").stdout
    for store in flow.path("results/features/train").glob("epoch_*.h5"):
        assert store.stat().st_nlink == 2, store  # each still linked from its kept entry


def test_a_killed_job_of_several_epochs_keeps_those_it_finished(float32_runs, tmp_path):
    """kill -9 of a job extracting epochs 0-2 once epoch 0 is done: the rerun reuses epoch 0 and
    computes the others, the same bytes as one job per epoch."""
    import shutil
    import signal
    import time

    import yaml

    from conftest import GROUPED

    config, (_, grouped) = float32_runs
    flow = grouped.clone(tmp_path / "project")
    shutil.rmtree(flow.path("results/reuse"))
    for epoch in range(3):
        flow.path(f"results/features/train/epoch_{epoch}.h5").unlink()
    more = dict(config, cache=dict(config["cache"], **GROUPED))
    flow.path("overlay.yaml").write_text(yaml.safe_dump(more))
    log = flow.path("results/logs/extract/epochs_0-2.log")
    log.unlink()
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "cache", *LOCAL_RUN, "--configfile",
                                str(flow.path("overlay.yaml"))], cwd=flow.root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and "epoch 1:" in log.read_text():  # epoch 0 stored and kept, epoch 1 begun
            job = next((pid for pid in job_pids("extract_epochs.py")), None)
            if job:
                os.kill(job, signal.SIGKILL)
                break
        time.sleep(0.005)
    process.wait()
    assert process.returncode != 0
    assert not flow.path("results/features/train/epoch_1.h5").exists()
    flow.run(more, "cache")
    text = log.read_text()
    assert re.search(r"reused [0-9a-f]{64}", text) and text.count("img/s") >= 1
    assert "epoch 0: " not in text and "epoch 2: 18/18" in text  # 0 not computed again
    _, (first, _) = float32_runs
    import h5py

    for epoch in range(3):
        with h5py.File(flow.path(f"results/features/train/epoch_{epoch}.h5")) as a, \
                h5py.File(first.path(f"results/features/train/epoch_{epoch}.h5")) as b:
            assert a["features"][:].tobytes() == b["features"][:].tobytes()


def test_a_key_changes_with_the_code_that_computes(tmp_path):
    """Editing a module of the package or the job's rule script gives new keys: an entry made by
    other code is never reused."""
    import shutil

    from conftest import ROOT

    for part in ("augcache", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, symlinks=True)

    def key(kind):
        code = ("from augcache.jobs.reuse import job_key; "
                f"print(job_key({kind!r}, {{'a': 1}}, {{}}, {{}})[0])")
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                              capture_output=True, text=True, check=True).stdout.strip()

    before = key("extract_epoch"), key("train_head")
    assert len(set(before)) == 2
    with open(tmp_path / "augcache/augmentation/augment.py", "a") as module:
        module.write("\n# edited\n")
    after_module = key("extract_epoch"), key("train_head")
    assert after_module[0] != before[0] and after_module[1] != before[1]
    with open(tmp_path / "scripts/train_head.py", "a") as script:
        script.write("\n# edited\n")
    assert key("extract_epoch") == after_module[0]
    assert key("train_head") != after_module[1]


def test_a_key_holds_the_code_its_job_runs_and_no_other(tmp_path):
    """The code part of a key is the job's script, the modules it imports (transitively, imports
    inside functions too) and the data files they read: a word of the report (its template, a
    table's module) changes no extraction or training key, only the report's; the augmentation
    function changes the epochs' keys."""
    import shutil

    from augcache.jobs.job_code import code_files
    from augcache.jobs.reuse import code_sha256
    from conftest import ROOT

    for part in ("augcache", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    package = tmp_path / "augcache"
    kinds = ("extract_epoch", "train_head", "write_manifest", "make_report")

    def keys():
        return {kind: code_sha256.__wrapped__(kind, package) for kind in kinds}

    def edit(relative):
        with open(tmp_path / relative, "a") as handle:
            handle.write("\n<!-- edited -->\n" if relative.endswith(".html") else "\n# edited\n")

    files = {kind: {str(p.relative_to(tmp_path)) for p in code_files(tmp_path / f"scripts/{kind}.py", package)}
             for kind in kinds}
    assert "augcache/augmentation/augment.py" in files["extract_epoch"] and "augcache/jobs/config.schema.yaml" in files["extract_epoch"]
    assert "augcache/report/templates/report.html" in files["make_report"]
    assert not any("report" in f for f in files["extract_epoch"] | files["train_head"] | files["write_manifest"])
    before = keys()
    edit("augcache/report/tables.py")
    edit("augcache/report/templates/report.html")
    after_report = keys()
    assert {k: after_report[k] == before[k] for k in kinds} == \
        {"extract_epoch": True, "train_head": True, "write_manifest": True, "make_report": False}
    edit("augcache/augmentation/augment.py")
    after_augment = keys()
    assert after_augment["extract_epoch"] != after_report["extract_epoch"]
    assert after_augment["train_head"] != after_report["train_head"]  # replay and on the fly augment


def test_a_job_of_several_epochs_reuses_the_epochs_jobs_of_one_made(float32_runs, tmp_path):
    """Epoch stores made one per job, lost, then wanted by a job of several epochs: each is reused."""
    from conftest import GROUPED

    config, (first, _) = float32_runs
    flow = first.clone(tmp_path / "project")
    for epoch in range(3):
        flow.path(f"results/features/train/epoch_{epoch}.h5").unlink()
    flow.run(dict(config, cache=dict(config["cache"], **GROUPED)), "cache")
    text = flow.path("results/logs/extract/epochs_0-2.log").read_text()
    assert len(re.findall(r"reused [0-9a-f]{64}", text)) == 3 and "img/s" not in text, text[-2000:]
    for epoch in range(3):
        store = f"results/features/train/epoch_{epoch}.h5"
        assert flow.path(store).read_bytes() == first.path(store).read_bytes()


# --- the reuse store's own contract, on plain files ---------------------------------------------


def _weights_file(path: Path, seed: int) -> Path:
    import keras

    from conftest import conv_base_model

    keras.utils.set_random_seed(seed)
    conv_base_model(seed=seed).save_weights(path)
    return path


def test_a_weights_file_is_known_by_its_bytes(tmp_path):
    """Keras .weights.h5 files carry no provenance: each is known by its bytes, so a replaced weights
    file gives its jobs new keys (its sha256 is remembered by path, size, times and inode)."""
    import shutil

    from augcache.jobs.reuse import hash_memo, identity, job_key

    first = _weights_file(tmp_path / "a.weights.h5", seed=1)
    second = _weights_file(tmp_path / "b.weights.h5", seed=2)
    root = tmp_path / "cache"
    before = identity(first, root)
    assert before != identity(second, root)
    key_before = job_key("check_conv_base", {}, {}, {"0": [first]}, threads=2, root=root)[0]
    assert len(list(hash_memo(root).iterdir())) == 2  # each hashed once, remembered
    shutil.copyfile(second, first)  # the documented way of changing weights: new bytes, same name
    assert identity(first, root) == identity(second, root) != before
    assert job_key("check_conv_base", {}, {}, {"0": [first]}, threads=2, root=root)[0] != key_before


def test_a_key_holds_the_thread_count_and_every_library_that_shapes_numbers(tmp_path):
    from augcache.core.provenance import LIBRARIES, versions
    from augcache.jobs.reuse import job_key

    key, fields = job_key("extract_epoch", {}, {}, {}, threads=2, root=tmp_path)
    assert set(LIBRARIES) <= set(fields["versions"]) and fields["threads"] == 2
    assert job_key("extract_epoch", {}, {}, {}, threads=4, root=tmp_path)[0] != key
    # decoding images gives the same bytes on any number of threads
    assert (job_key("index_dataset", {}, {}, {}, threads=2, root=tmp_path)[0]
            == job_key("index_dataset", {}, {}, {}, threads=8, root=tmp_path)[0])
    # the same list names the stores' provenance fields
    assert {f"{name.replace('-', '_')}_version" for name in LIBRARIES} <= set(versions())


def _outputs(folder: Path, **files) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]


def test_outputs_are_matched_to_entry_files_by_name(tmp_path):
    """A rule whose outputs were listed in another order gets each output's own bytes back; an
    entry that names other outputs is not used."""
    from augcache.jobs.reuse import reuse, store

    root = tmp_path / "cache"
    a, b = _outputs(tmp_path / "run", **{"head.keras": "head", "metrics.csv": "metrics"})
    store("train_head", "k1", {}, [a, b], root=root)
    a.unlink(), b.unlink()
    assert reuse("train_head", "k1", [b, a], root=root) is not None
    assert (a.read_text(), b.read_text()) == ("head", "metrics")
    assert reuse("train_head", "k1", [a, tmp_path / "run" / "summary.json"], root=root) is None


def test_reuse_never_moves_another_outputs_time(tmp_path):
    """An entry used by one output and put in place for another: the second gets a copy, so the
    first output's modification time (what Snakemake judges it by) does not move, and gc keeps the
    entry while either is in place."""
    import time

    from augcache.jobs.gc import collect_garbage
    from augcache.jobs.reuse import reuse, store

    root = tmp_path / "cache"
    (main,) = _outputs(tmp_path / "main", **{"val.h5": "features"})
    store("extract_unaugmented", "k1", {}, [main], root=root)
    past = time.time() - 1000
    os.utime(main, (past, past))
    variant = tmp_path / "variant" / "val.h5"
    assert reuse("extract_unaugmented", "k1", [variant], root=root) is not None
    assert main.stat().st_mtime == past
    assert variant.stat().st_ino != main.stat().st_ino and variant.read_text() == "features"
    main.unlink()
    assert collect_garbage(root) == ([], 0)  # the copy in place keeps its entry
    variant.unlink()
    assert collect_garbage(root)[0] == [root / "extract_unaugmented" / "k1"]


def test_a_copied_entry_is_kept_while_an_output_uses_it(tmp_path, monkeypatch):
    """Where hard links fail (another filesystem) the entry holds copies; gc still keeps it while the
    output it was made from is in place, and removes it once that output is replaced."""
    from augcache.jobs import gc
    from augcache.jobs import reuse as module

    def no_link(source, target):
        raise OSError("cross-device link")

    monkeypatch.setattr(module.os, "link", no_link)
    root = tmp_path / "cache"
    (output,) = _outputs(tmp_path / "run", **{"epoch_0.h5": "features"})
    module.store("extract_epoch", "k1", {}, [output], root=root)
    assert (root / "extract_epoch" / "k1" / "epoch_0.h5").stat().st_nlink == 1
    assert gc.collect_garbage(root) == ([], 0)
    output.unlink()
    output.write_text("other features")  # recomputed: another file at the same path
    assert gc.collect_garbage(root)[0] == [root / "extract_epoch" / "k1"]


def test_gc_never_removes_an_entry_while_a_job_puts_it_in_place(tmp_path, monkeypatch):
    """gc running while a job places an entry (the job has already removed its old output) finds
    the entry's lock held and keeps it; the job's output is put in place."""
    from augcache.jobs import gc
    from augcache.jobs import reuse as module

    root = tmp_path / "reuse"
    (output,) = _outputs(tmp_path / "run", **{"epoch_0.h5": "features"})
    module.store("extract_epoch", "k1", {}, [output], root=root)
    output.unlink()  # lost: unused, the entry is gc's to remove
    seen = []
    real_link = module._hard_link

    def link_while_gc_runs(source, target):
        seen.append(gc.collect_garbage(root))
        return real_link(source, target)

    monkeypatch.setattr(module, "_hard_link", link_while_gc_runs)
    assert module.reuse("extract_epoch", "k1", [output], root=root) is not None
    assert seen == [([], 0)] and output.read_text() == "features"
    monkeypatch.setattr(module, "_hard_link", real_link)
    assert gc.collect_garbage(root) == ([], 0)  # in use now
    output.unlink()
    assert gc.collect_garbage(root)[0] == [root / "extract_epoch" / "k1"]


def test_two_jobs_placing_one_entry_at_once_never_share_a_file(tmp_path, monkeypatch):
    """Two jobs with one key reuse it at the same moment (a variant and the main run): they place
    it in turn, so the second sees the first's link and gets a copy."""
    import threading

    from augcache.jobs import reuse as module

    root = tmp_path / "reuse"
    (made,) = _outputs(tmp_path / "made", **{"val.h5": "features"})
    module.store("extract_unaugmented", "k1", {}, [made], root=root)
    made.unlink()
    first, second = tmp_path / "main" / "val.h5", tmp_path / "variant" / "val.h5"
    inside, done = threading.Event(), []
    real_link = module._hard_link

    def slow_link(source, target):
        if target == first:
            inside.set()
            time.sleep(0.5)  # the second job tries meanwhile
        return real_link(source, target)

    monkeypatch.setattr(module, "_hard_link", slow_link)
    thread = threading.Thread(target=lambda: done.append(module.reuse("extract_unaugmented", "k1", [first], root=root)))
    thread.start()
    inside.wait(5)
    assert module.reuse("extract_unaugmented", "k1", [second], root=root) is not None
    thread.join()
    assert done[0] is not None
    assert first.read_text() == second.read_text() == "features"
    assert first.stat().st_ino != second.stat().st_ino


def test_gc_dry_run_changes_nothing(tmp_path):
    """--dry-run lists what would go, an earlier version's results/cache included, and moves nothing."""
    from augcache.jobs.reuse import store

    former = tmp_path / "results" / "cache"
    (lost,) = _outputs(tmp_path / "run", **{"val.h5": "features"})
    store("extract_unaugmented", "k1", {}, [lost], root=former)
    lost.unlink()
    command = subprocess.run([Path(sys.executable).with_name("augcache"), "gc", "--dry-run", "--workdir", tmp_path],
                             capture_output=True, text=True)
    assert command.returncode == 0 and "1 unused entry" in command.stdout, command.stdout + command.stderr
    assert (former / "extract_unaugmented" / "k1").is_dir() and not (tmp_path / "results" / "reuse").exists()


def test_gc_leaves_the_unfinished_entries_of_running_jobs_alone(tmp_path):
    import socket

    from augcache.jobs.gc import UNFINISHED_GRACE_SECONDS, collect_garbage

    root = tmp_path / "cache" / "extract_epoch"
    host = socket.gethostname()
    running = root / f".k1.{host}.{os.getpid()}.0123abcd.tmp"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = root / f".k2.{host}.{dead.pid}.0123abcd.tmp"
    elsewhere = root / ".k3.node-7.4242.0123abcd.tmp"
    old = root / ".k4.node-7.4243.0123abcd.tmp"
    for entry in (running, killed, elsewhere, old):
        entry.mkdir(parents=True)
        (entry / "epoch_0.h5").write_text("partial")
    past = os.stat(old).st_mtime - UNFINISHED_GRACE_SECONDS - 60
    os.utime(old, (past, past))
    removed, _ = collect_garbage(tmp_path / "cache")
    assert sorted(removed) == sorted([killed, old])
    assert running.is_dir() and elsewhere.is_dir()


def test_temporary_entry_names_differ_between_hosts_and_processes(tmp_path, monkeypatch):
    """Two jobs storing one key at once on two hosts with the same process id never share a
    temporary folder."""
    from augcache.jobs import reuse as module

    names = []
    real_replace = module.os.replace

    def record(source, target):
        names.append(Path(source).name)
        return real_replace(source, target)

    monkeypatch.setattr(module.os, "replace", record)
    for host in ("node-1", "node-2"):
        monkeypatch.setattr(module.socket, "gethostname", lambda host=host: host)
        (output,) = _outputs(tmp_path / host, **{"epoch_0.h5": "features"})
        module.store("extract_epoch", f"key-{host}", {}, [output], root=tmp_path / "cache")
    entries = [n for n in names if n.startswith(".key-")]
    assert len(entries) == 2 and "node-1" in entries[0] and "node-2" in entries[1]


def _mobilenet_weights(path: Path, seed: int) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3),
                                   alpha=0.35).save_weights(path)
    return path


def test_replacing_the_bytes_of_a_weights_file_recomputes_the_features(workflow, tiny_data, tmp_path):
    """conv_base.weights overwritten with other weights under the same name: the base is checked
    again and the epoch's features are computed from the new weights, not put back from before."""
    import shutil

    import h5py

    from conftest import tiny_config

    weights = _mobilenet_weights(tmp_path / "base.weights.h5", seed=1)
    other = _mobilenet_weights(tmp_path / "other.weights.h5", seed=2)
    config = tiny_config(tiny_data, "unused", cache={"k": 1},
                         conv_base={"architecture": "MobileNetV2", "weights": str(weights), "options": {"alpha": 0.35},
                                    "pooling": None})
    target = "results/features/train/epoch_0.h5"
    workflow.run(config, target)
    with h5py.File(workflow.path(target)) as handle:
        before = handle["features"][:]
    shutil.copyfile(other, weights)
    workflow.run(config, target)
    assert "img/s" in workflow.path("results/logs/extract/epoch_0.log").read_text()
    with h5py.File(workflow.path(target)) as handle:
        after = handle["features"][:]
    assert before.shape == after.shape and not np.array_equal(before, after)


def test_entries_kept_in_results_cache_move_to_results_reuse(cache_copy):
    """A project whose entries an earlier version kept in results/cache: the next run moves them
    to results/reuse first, and a deleted store comes back from its entry, not computed."""
    config, flow = cache_copy
    flow.path("results/reuse").rename(flow.path("results/cache"))
    store = flow.path("results/features/train/epoch_1.h5")
    store.unlink()
    log = flow.path("results/logs/extract/epoch_1.log")
    log.unlink()
    flow.run(config, "cache")
    assert not flow.path("results/cache").exists()
    assert any(flow.path("results/reuse/extract_epoch").glob("*/epoch_1.h5"))
    assert re.search(r"reused [0-9a-f]{64}", log.read_text()), log.read_text()[-1500:]


def test_a_results_cache_of_other_files_is_left_alone(tmp_path):
    from augcache.jobs.gc import migrate

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "notes.txt").write_text("mine")
    assert migrate(tmp_path) is None
    assert (tmp_path / "cache" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "reuse").exists()
    empty = tmp_path / "empty"
    assert migrate(empty) is None


def test_an_entry_is_placed_where_the_filesystem_has_no_locks(tmp_path, monkeypatch, caplog):
    """flock failing (Lustre mounted without flock) warns and places the entry all the same."""
    import fcntl

    from augcache.jobs import reuse as module

    def no_locks(handle, operation):
        raise OSError(38, "Function not implemented")

    root = tmp_path / "reuse"
    (output,) = _outputs(tmp_path / "run", **{"val.h5": "features"})
    module.store("extract_unaugmented", "k1", {}, [output], root=root)
    output.unlink()
    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert module.reuse("extract_unaugmented", "k1", [output], root=root) is not None
    assert output.read_text() == "features" and "cannot lock" in caplog.text


def test_an_entry_of_the_version_before_is_re_keyed_once(tmp_path, monkeypatch, caplog):
    """An entry kept by the version before this one (the same fields but the code, which
    augcache.jobs.former lists) takes this version's key once, with a note, and is then reused; a
    kind the table does not list, or an entry of any other code, is not."""
    import hashlib

    from augcache.core.provenance import canonical_json
    from augcache.jobs import reuse

    root, out = tmp_path / "reuse", tmp_path / "epoch_0.csv"
    key, fields = reuse.job_key("write_manifest", {"seed": 1}, {"epoch": "0"}, {}, root=root)
    former = dict(fields, code="0" * 64)
    former_key = hashlib.sha256(canonical_json(former).encode()).hexdigest()
    out.write_text("sample_id,angle\n")
    reuse.store("write_manifest", former_key, former, [out], root=root)
    out.unlink()

    assert not reuse.rekey_former("write_manifest", key, fields, root)  # not listed: computed
    monkeypatch.setitem(reuse.FORMER_CODE, "write_manifest", "1" * 64)
    assert not reuse.rekey_former("write_manifest", key, fields, root)  # other code: computed
    monkeypatch.setitem(reuse.FORMER_CODE, "write_manifest", "0" * 64)
    assert reuse.rekey_former("write_manifest", key, fields, root)
    assert "re-keyed once as " + key in caplog.text
    assert not reuse.entry_dir("write_manifest", former_key, root).exists()
    record = reuse.reuse("write_manifest", key, [out], root)
    assert record["key"] == key and record["fields"] == fields and out.read_text() == "sample_id,angle\n"
    assert not reuse.rekey_former("write_manifest", key, fields, root)  # once
