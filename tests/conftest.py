"""Fixtures: tiny image folders, tiny conv bases, and a runner for the workflow in a temp copy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import scheduler
# (LOCAL_RUN, ROOT and Workflow are imported from here by the tests)
from scheduler import LOCAL_RUN, ROOT, SHARED_RUNS, Later, Workflow, shared_runs_read  # noqa: F401

SIZE = 32
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SLURM_DIR = Path(os.environ.get("AUGCACHE_SLURM_DIR", "/tmp/augcache-slurm"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Python code that hides TensorFlow as a machine without it lacks it: no import finds it (importing
# it raises ModuleNotFoundError, importlib.util.find_spec answers None, nothing enters sys.modules,
# which Keras reads to tell whether TensorFlow is in use) and no distribution metadata names it.
WITHOUT_TENSORFLOW = """
import sys
class _WithoutTensorFlow:
    def __init__(self, finder):
        self._finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return None
        return self._finder.find_spec(name, path, target)
    def find_distributions(self, *args, **kwargs):
        found = getattr(self._finder, "find_distributions", None)
        return [] if found is None else [d for d in found(*args, **kwargs)
                                         if (d.metadata["Name"] or "").lower() != "tensorflow"]
    def __getattr__(self, attribute):
        return getattr(self._finder, attribute)
sys.meta_path[:] = [_WithoutTensorFlow(finder) for finder in sys.meta_path]
"""


def without_tensorflow(folder: Path, **variables) -> dict:
    """An environment whose Python processes cannot import TensorFlow (a sitecustomize module in
    folder, on PYTHONPATH), without this process's KERAS_BACKEND, plus variables."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(WITHOUT_TENSORFLOW)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return env | variables


def write_png(path: Path, image: np.ndarray) -> None:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image).numpy())


def make_image_folder(root: Path, per_class: dict[str, int], size: int = SIZE, seed: int = 0) -> Path:
    """Class subfolders of PNGs rendered from the demo shapes; per_class maps 'split/class' or 'class' to a count."""
    from augcache.data.demo import TRAIN_SPREAD, render

    rng = np.random.default_rng(seed)
    for folder, count in per_class.items():
        shape = folder.split("/")[-1]
        for i in range(count):
            write_png(root / folder / f"{shape}_{i:03d}.png", render(shape, size, rng, TRAIN_SPREAD))
    return root


@pytest.fixture(scope="session")
def cluster():
    """A single-node SLURM cluster (tests/slurm/cluster.sh), up until the session ends."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM integration test starts a SLURM cluster on this machine and needs root")
    subprocess.run([str(CLUSTER), "start"], check=True)
    yield SLURM_DIR
    subprocess.run([str(CLUSTER), "stop"], check=False)


@pytest.fixture(scope="session", autouse=True)
def answering_slurm_controller(request):
    """Snakemake's SLURM plugin runs `scontrol show config` in every snakemake process, each job's
    included; with SLURM installed and its controller stopped, that waits 9 s every time. Where
    SLURM is installed, the test cluster runs for the whole session (as root), so it answers; a
    session of unit tests alone runs no Snakemake and starts no cluster."""
    runs_snakemake = any(item.get_closest_marker("unit") is None for item in request.session.items)
    if runs_snakemake and shutil.which("scontrol") and os.geteuid() == 0:
        request.getfixturevalue("cluster")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """train/ and val/ folders, three classes, 32x32 PNGs."""
    root = tmp_path_factory.mktemp("data")
    counts = {f"train/{c}": 6 for c in ("circle", "square", "triangle")}
    counts.update({f"val/{c}": 2 for c in ("circle", "square", "triangle")})
    return make_image_folder(root, counts)


def load_images(paths, size: tuple[int, int], policy: str = "stretch"):
    """(N, H, W, 3) float32 stack of the images at paths in [0, 255], each decoded as the workflow
    decodes it (augcache.data.images.load_pixels)."""
    import tensorflow as tf

    from augcache.data.images import load_pixels

    return tf.constant(np.stack([load_pixels(str(p), size, policy) for p in paths]).astype(np.float32))


def batch_norm_with_statistics(x, seed: int, name: str | None = None):
    """x through a BatchNormalization layer whose scale, offset and moving statistics are not the
    identity's (so inference mode visibly differs from batch statistics)."""
    import keras

    norm = keras.layers.BatchNormalization(name=name)
    x = norm(x)
    rng = np.random.default_rng(seed)
    gamma, beta, mean, var = norm.get_weights()
    norm.set_weights([gamma * 1.5, beta + 0.1, mean + rng.uniform(0, 0.5, mean.shape),
                      var * rng.uniform(0.5, 2.0, var.shape)])
    return x


def conv_base_model(size: int = SIZE, batchnorm: bool = False, seed: int = 1):
    """Two conv layers (optionally with BatchNorm holding non-trivial moving statistics)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    if batchnorm:
        x = batch_norm_with_statistics(x, seed)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    return keras.Model(inputs, x)


def split_base_model(size: int = SIZE, seed: int = 2):
    """A conv block, the layer 'cut', then a conv block with BatchNorm (non-trivial moving
    statistics) and a ReLU: a base to split at 'cut' with BatchNorm in its top."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D(name="cut")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="top_conv")(x)
    x = batch_norm_with_statistics(x, seed, name="top_norm")
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="session")
def split_base_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("split_base") / "split_base.keras"
    split_base_model().save(path)
    return path


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base") / "tiny_base.keras"
    conv_base_model(batchnorm=True).save(path)
    return path


@pytest.fixture(scope="session")
def other_base(tmp_path_factory) -> Path:
    """Same architecture as tiny_base, other weights."""
    path = tmp_path_factory.mktemp("base2") / "tiny_base.keras"
    conv_base_model(batchnorm=True, seed=7).save(path)
    return path


def tiny_config(data_dir: Path, base: Path, **sections) -> dict:
    config = {
        "seed": 3,
        "data": {"dir": str(data_dir), "image_size": [SIZE, SIZE]},
        "augment": {
            "rotation_range": 25,
            "width_shift_range": 0.15,
            "height_shift_range": 0.1,
            "shear_range": 5,
            "zoom_range": 0.1,
            "horizontal_flip": True,
            "brightness_range": [0.8, 1.2],
            "channel_shift_range": 10,
            "fill_mode": "reflect",
        },
        "conv_base": {"architecture": str(base), "pooling": None},
        # one job per epoch, as most tests count; the second shared float32 run groups them
        "cache": {"k": 3, "dtype": "float32", "batch_size": 4, "epochs_per_job": 1},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def check_log(flow: Workflow) -> Path:
    """The log of the base check that ran last (each setting's check has its own, named by its key)."""
    return max(flow.path("results/logs/check_conv_base").glob("*.log"), key=lambda p: p.stat().st_mtime_ns)


@pytest.fixture
def workflow(tmp_path) -> Workflow:
    return Workflow(tmp_path / "project")


def full_config(data, base, predict_dir=None):
    return tiny_config(
        data, base,
        cache={"k": 2, "dtype": "float16"},
        head={"hidden_units": [16], "epochs": 4, "batch_size": 5},
        train={"modes": ["cached", "hybrid", "replay", "onthefly", "noaug", "featureaug"], "sweep_k": [1],
               "repeats": 2},
        # every feature transform, the spatial ones on the tiny base's conv map
        feature_augment={"brightness": 0.2, "contrast": 0.2, "posterize_bits": 5, "per_channel": True,
                         "flip": True, "crop": 0.3},
        predict={"dir": str(predict_dir) if predict_dir else None},
        # two test-time views of the validation images, and the k-NN classifier on both banks
        eval={"tta_views": 2, "knn": {"k": 3}},
    )


# The runs many tests share start together when the session starts (each in the background, see
# shared_runs_started), so that their jobs fill the cores while other tests run; a test that reads
# one waits for it to finish. A second wave (Later: the torch run, the second JAX run, the SLURM
# run) starts when the first has ended, while the tests that read the first run one at a time.
# Tests only read them; one that changes a run works on a clone.

# cache.epochs_per_job of the second float32 run: with LOCAL_RUN's 2 GPU slots and K=5 (the default
# train.sweep_k reach 5), epochs 0-2 in one job and 3-4 in another; target `cache` needs the first
GROUPED = {"epochs_per_job": "auto"}


@pytest.fixture(scope="session")
def float32_started(tmp_path_factory, tiny_data, tiny_base):
    config = tiny_config(tiny_data, tiny_base)
    grouped = dict(config, cache=dict(config["cache"], **GROUPED))
    flows = [Workflow(tmp_path_factory.mktemp(name) / "project") for name in ("first", "second")]
    return config, flows, [flows[0].start(config, "cache"), flows[1].start(grouped, "cache")]


@pytest.fixture(scope="session")
def float32_runs(float32_started):
    """The cache (target `cache`, K=3, float32) of the same config made twice, each in its own clean
    copy: one job per epoch, then (the second) several epochs per job (GROUPED), which changes no
    result."""
    config, flows, started = float32_started
    for run in started:
        run.wait()
    return config, flows


@pytest.fixture(scope="session")
def full_started(tmp_path_factory, tiny_data, tiny_base):
    flow = Workflow(tmp_path_factory.mktemp("full") / "project")
    config = full_config(tiny_data, tiny_base, predict_dir=tiny_data / "val")
    return config, flow, flow.start(config)


@pytest.fixture(scope="session")
def full_run(full_started):
    """The workflow run once with every mode, a K sweep, two repeats and prediction (float16, K=2)."""
    config, flow, started = full_started
    started.wait()
    return config, flow


# keras-hub presets: tiny random backbones saved as local preset folders (nothing is downloaded)
PATCH = 8


@pytest.fixture(scope="session")
def vit_preset(tmp_path_factory):
    """A 2-layer ViT (class token) at 32 px, with an image converter to [-1, 1]."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("presets") / "vit"
    keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), patch_size=PATCH, num_layers=2, num_heads=2,
                                 hidden_dim=16, mlp_dim=32).save_to_preset(path)
    keras_hub.layers.ViTImageConverter(image_size=(SIZE, SIZE), scale=1 / 127.5, offset=-1).save_to_preset(path)
    return path


@pytest.fixture(scope="session")
def dino_preset(tmp_path_factory):
    """A 2-layer DINOv2 with 2 register tokens at 32 px, without an image converter."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(6)
    path = tmp_path_factory.mktemp("presets") / "dinov2"
    keras_hub.models.DINOV2Backbone(patch_size=PATCH, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                                    num_register_tokens=2, image_shape=(SIZE, SIZE, 3),
                                    position_embedding_shape=(SIZE, SIZE, 3)).save_to_preset(path)
    return path


def hub_config(data, preset):
    return tiny_config(
        data, "unused",
        conv_base={"architecture": "keras_hub", "preset": str(preset), "pooling": None},
        cache={"k": 2, "dtype": "float32"},
        head={"hidden_units": [8], "epochs": 2, "batch_size": 6},
        train={"modes": ["cached", "featureaug"], "sweep_k": [], "repeats": 1},
        feature_augment={"flip": True, "crop": 0.25},
        predict={"dir": str(data / "val")},
    )


@pytest.fixture(scope="session")
def hub_started(tmp_path_factory, tiny_data, vit_preset):
    flow = Workflow(tmp_path_factory.mktemp("hub") / "project")
    config = hub_config(tiny_data, vit_preset)
    return config, flow, flow.start(config)


@pytest.fixture(scope="session")
def hub_run(hub_started):
    """The whole workflow on a keras-hub ViT preset, its patch grid as spatial features (cached and
    featureaug with spatial transforms, K=2, one repeat, prediction)."""
    config, flow, started = hub_started
    started.wait()
    return config, flow


# head_sweep's learning rates in the shared sweep run
RATES = [0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001]


def sweep_config(data, base, rates, test_dir=None):
    return tiny_config(
        data, base,
        cache={"k": 2, "dtype": "float32"},
        head={"hidden_units": [8], "epochs": 3, "batch_size": 6},
        train={"modes": ["cached"], "sweep_k": [], "repeats": 2},
        head_sweep={"learning_rate": rates},
        data={"test_dir": str(test_dir) if test_dir else None},
        # the exported model scored on the test images with a test-time view too
        eval={"tta_views": 1},
    )


@pytest.fixture(scope="session")
def swept_started(tmp_path_factory, tiny_data, tiny_base):
    flow = Workflow(tmp_path_factory.mktemp("sweep") / "project")
    test_dir = make_image_folder(tmp_path_factory.mktemp("test_images"),
                                 {"circle": 3, "square": 3, "triangle": 3}, seed=11)
    config = sweep_config(tiny_data, tiny_base, RATES, test_dir)
    return config, flow, flow.start(config)


@pytest.fixture(scope="session")
def swept(swept_started):
    """A head sweep over RATES on one cache (K=2, float32, two repeats, test images)."""
    config, flow, started = swept_started
    started.wait()
    return config, flow


def digests(folder: Path) -> dict[str, str]:
    """{path below folder: sha256} of every file below it."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def varied_started(tmp_path_factory, swept_started):
    """A copy of the finished sweep run, given a variant (rot10) and tracking, in the background once
    the sweep run has ended: what a dry run plans, the default cache's files before, the run, and the
    variant's test-time evaluation asked for alone."""
    config, finished, _ = swept_started
    root = tmp_path_factory.mktemp("varied")
    tracking = {"mlflow": {"uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "variants"}, "tensorboard": True}
    with_variant = dict(config, variants={"rot10": {"augment": {"rotation_range": 10}}}, tracking=tracking)
    made: dict = {"config": with_variant, "database": root / "mlflow.db"}

    def steps():
        flow = made["flow"] = Workflow(root / "project", finished=finished)
        made["before"] = {part: digests(flow.path(f"results/{part}"))
                          for part in ("dataset", "manifest", "features", "train", "sweep", "model")}
        made["planned"] = flow.run(with_variant, "-n").stdout
        flow.run(with_variant)
        flow.run(with_variant, "results/variants/rot10/results/eval/heads.json")
        made["again"] = flow.run(with_variant, "-n").stdout

    return made, Later(None, steps=steps)


@pytest.fixture(scope="session")
def varied(varied_started):
    """The sweep run with a variant of its cache (rot10: rotation 10) added and every run tracked in
    MLflow and TensorBoard (see varied_started): {config, flow, before, planned, again, database}."""
    made, started = varied_started
    started.wait()
    return made


def folds_config(data, base, folds: int = 3, repeats: int = 2, **sections):
    """Cross-validation (eval.folds) of cached, replay, on the fly and no augmentation (K=2, two
    repeats, float32), the k-NN classifier on both banks, and a test-time view."""
    return tiny_config(data, base, cache={"k": 2}, head={"hidden_units": [8], "epochs": 3, "batch_size": 4},
                       train={"modes": ["cached", "replay", "onthefly", "noaug"], "sweep_k": [], "repeats": repeats},
                       eval={"folds": folds, "knn": {"k": 3}, "tta_views": 1}, **sections)


@pytest.fixture(scope="session")
def folded_started(tmp_path_factory, tiny_data, tiny_base):
    flow = Workflow(tmp_path_factory.mktemp("folds") / "project")
    # every head run tracked in a local MLflow database beside the project
    tracking = {"mlflow": {"uri": f"sqlite:///{flow.root.parent / 'mlflow.db'}", "experiment": "folds"}, "tensorboard": True}
    config = folds_config(tiny_data, tiny_base, repeats=1, head_sweep={"learning_rate": [0.01, 0.001]},
                          tracking=tracking)
    return config, flow, flow.start(config)


@pytest.fixture(scope="session")
def folded(folded_started):
    """Three folds of the 24 labelled tiny images, one repeat, four modes (see folds_config), a head
    sweep of two learning rates chosen by the folds, and every head run tracked in MLflow. (What a
    second repeat adds is planned, not run: test_folds.py.)"""
    config, flow, started = folded_started
    started.wait()
    return config, flow


HEAD_EPOCHS, FINETUNE_EPOCHS = 3, 2


def finetune_config(data, base, **sections):
    config = tiny_config(
        data, base,
        conv_base={"split": "cut"},
        cache={"k": 2, "dtype": "float32"},
        # balanced class weights (all 1 on the tiny data's equal classes) through both phases
        head={"hidden_units": [16], "epochs": HEAD_EPOCHS, "batch_size": 5, "class_weight": "balanced"},
        finetune={"epochs": FINETUNE_EPOCHS, "learning_rate": 1e-3},
        train={"modes": ["cached", "replay", "onthefly", "noaug"], "sweep_k": [2], "repeats": 1},
    )
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


@pytest.fixture(scope="session")
def finetune_started(tmp_path_factory, tiny_data, split_base_file):
    flow = Workflow(tmp_path_factory.mktemp("finetune") / "project")
    config = finetune_config(tiny_data, split_base_file, variants={"u8": {"cache": {"dtype": "uint8"}}})
    return config, flow, flow.start(config)


@pytest.fixture(scope="session")
def finetuned(finetune_started):
    """Every mode fine-tuned on a float32 cache, and on a uint8 cache (the variant u8)."""
    config, flow, started = finetune_started
    started.wait()
    return config, flow


# The full config's stores and heads (K = 2, float16, one repeat, four modes) under Keras' JAX
# backend, on a machine without TensorFlow (no job can import it), twice: the whole workflow, and
# (the second, in the second wave) its stores and the cached and on-the-fly runs again, for
# determinism.
JAX_TARGETS = ("cache", "results/train/cached/k2_r0/head.keras", "results/train/onthefly/r0/head.keras")


def jax_config(data, base, predict_dir=None):
    full = full_config(data, base, predict_dir)
    return dict(full, train={"modes": ["cached", "replay", "onthefly", "noaug"], "sweep_k": [], "repeats": 1},
                software={"backend": "jax"}, eval={})


@pytest.fixture(scope="session")
def jax_started(tmp_path_factory, tiny_data, tiny_base):
    env = without_tensorflow(tmp_path_factory.mktemp("without_tensorflow"))
    flows = [Workflow(tmp_path_factory.mktemp(name) / "project", env=env) for name in ("jax", "jax_again")]
    config = jax_config(tiny_data, tiny_base, predict_dir=tiny_data / "val")
    return config, flows, [flows[0].start(config), Later(flows[1], (config, JAX_TARGETS, {}))]


@pytest.fixture(scope="session")
def jax_runs(jax_started):
    """jax_config's whole workflow (export and prediction included) under JAX without TensorFlow,
    and a second copy that made its stores and two runs again."""
    config, flows, started = jax_started
    for run in started:
        run.wait()
    return config, flows


# The same config's cached and replay runs (extraction, training with the base and without, export
# and prediction) under Keras' torch backend, on the CPU build of PyTorch that ./run tests installs
# (the extra [torch]), without TensorFlow.
def torch_config(data, base, predict_dir=None):
    return dict(jax_config(data, base, predict_dir), software={"backend": "torch"},
                train={"modes": ["cached", "replay"], "sweep_k": [], "repeats": 1})


@pytest.fixture(scope="session")
def torch_started(tmp_path_factory, tiny_data, tiny_base):
    env = without_tensorflow(tmp_path_factory.mktemp("without_tensorflow_torch"))
    flow = Workflow(tmp_path_factory.mktemp("torch") / "project", env=env)
    config = torch_config(tiny_data, tiny_base, predict_dir=tiny_data / "val")
    return config, flow, Later(flow, (config, (), {}))


@pytest.fixture(scope="session")
def torch_run(torch_started):
    """torch_config's whole workflow under torch without TensorFlow (in the second wave)."""
    config, flow, started = torch_started
    started.wait()
    return config, (flow,)


def slurm_config(full_config):
    """The shared full run's config with the modes that read stores only, one repeat, no prediction:
    its stores and heads (the feature transforms drawn too) are the full run's."""
    return dict(full_config, train=dict(full_config["train"], modes=["cached", "noaug", "featureaug", "hybrid"],
                                        sweep_k=[],
                                        repeats=1), predict={"dir": None})


def slurm_args(*extra):
    return ("--profile", "profiles/slurm", "--slurm-status-command", "squeue",
            "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "1",
            "--retries", "0", *extra)


# The extraction epochs as one job array, every other job as an sbatch of its own
SLURM_ARRAY = ("--slurm-array-jobs", "extract_epoch")


@pytest.fixture(scope="session")
def slurm_started(cluster, tmp_path_factory, full_started):
    full, _, _ = full_started
    flow = Workflow(tmp_path_factory.mktemp("slurm") / "project")
    config = slurm_config(full)
    # an array groups the jobs that are ready together: make their inputs (local rules) first
    inputs = [f"results/manifest/epoch_{e}.csv" for e in range(config["cache"]["k"])] + ["results/base/base.json"]
    return config, flow, Later(flow, (config, (*inputs, *slurm_args(*SLURM_ARRAY)), {"local": False, "timeout": 600}),
                               (config, slurm_args(*SLURM_ARRAY), {"local": False, "timeout": 1200}))


@pytest.fixture(scope="session")
def slurm_run(slurm_started):
    """slurm_config's pipeline through the slurm profile on the test cluster (in the second wave)."""
    config, flow, started = slurm_started
    started.wait()
    return config, flow


@pytest.fixture(scope="session", autouse=True)
def shared_runs_started(request, answering_slurm_controller):
    """Start, at once and in the background, every shared run a selected test reads."""
    wanted = set().union(*map(shared_runs_read, request.session.items))
    for name, started in SHARED_RUNS.items():
        if name in wanted:
            try:
                request.getfixturevalue(started)
            except pytest.skip.Exception:  # a run that cannot start here: its tests skip, saying why
                pass


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Each test marked with its tier (before -m selects), and put in the scheduler's order."""
    scheduler.mark_and_order(items)
