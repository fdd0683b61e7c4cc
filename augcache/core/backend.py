"""The Keras backend every job computes with: which one a run uses, and what each one needs to
compute reproducibly. This module imports nothing from the rest of the package.

A run's backend is ``software.backend``, else the ``KERAS_BACKEND`` Snakemake starts with, else
TensorFlow (:func:`chosen`); the main process passes it on to its jobs (:func:`pass_on`) and each
job sets it before Keras is imported (:func:`use`). Every backend runs the same augmentation
(:mod:`augcache.augmentation.augment`, Keras ops) and the same base; stores and runs record the backend
(``keras_backend``), so stores of different backends are not mixed. TensorFlow compiles with
``tf.function`` and feeds Keras through ``tf.data``; the others compile the augmentation and the
base in one step (:func:`jax_jit`, :func:`inference`) and feed Keras from Python generators.

Op determinism (``cache.deterministic_ops``), per backend:

- tensorflow: ``tf.config.experimental.enable_op_determinism()``; on a GPU it forces deterministic
  cuDNN algorithms (some slower), and raises for ops without a deterministic kernel;
- jax: ``--xla_gpu_deterministic_ops=true`` in ``XLA_FLAGS``, set before JAX starts its GPU
  backend (XLA on the CPU is deterministic already);
- torch: ``torch.use_deterministic_algorithms(True)`` (with ``CUBLAS_WORKSPACE_CONFIG`` set as
  CUDA requires).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# The backends by name; TENSORFLOW is the default. This module is the one that names them.
TENSORFLOW, JAX, TORCH = "tensorflow", "jax", "torch"
BACKENDS = (TENSORFLOW, JAX, TORCH)
# The variable Keras reads its backend from.
ENV = "KERAS_BACKEND"
# The variable that says which GPUs a process may use (set per job by augcache.jobs.devices).
VISIBLE = "CUDA_VISIBLE_DEVICES"

JAX_DETERMINISM = "--xla_gpu_deterministic_ops=true"


def name() -> str:
    """The Keras backend of this process (KERAS_BACKEND; the package sets tensorflow unless the
    user chose another), known without importing Keras."""
    return os.environ.get(ENV, TENSORFLOW)


def chosen(configured: str | None) -> str:
    """The backend a workflow run computes with: software.backend, else the KERAS_BACKEND the run
    started with, else TensorFlow. ValueError naming KERAS_BACKEND for a backend Keras lacks."""
    choice = configured or os.environ.get(ENV) or TENSORFLOW
    if choice not in BACKENDS:
        raise ValueError(f"{ENV}={choice} is not a backend augcache runs on ({', '.join(BACKENDS)}): "
                         "unset it or set software.backend")
    return choice


def pass_on(choice: str) -> None:
    """Make `choice` the backend of the processes this one starts (the workflow's jobs), whether
    or not it is installed here (a job may run in an environment of its own)."""
    os.environ[ENV] = choice


def use(choice: str) -> None:
    """Make `choice` this process's backend (and that of the processes it starts): before Keras
    is imported, which reads it once."""
    import importlib.util
    import sys

    try:
        installed = importlib.util.find_spec(choice) is not None
    except ImportError:
        installed = False
    if not installed:
        extra = "'augcache[tensorflow]' (or [gpu], its CUDA build)" if choice == TENSORFLOW else f"'augcache[{choice}]'"
        raise ValueError(f"software.backend (or {ENV}) is {choice}, which is not installed in this environment: "
                         f"pip install {extra}, or choose another backend")
    if "keras" in sys.modules and os.environ.get(ENV, TENSORFLOW) != choice:
        raise RuntimeError(f"Keras was imported with backend {os.environ.get(ENV, TENSORFLOW)} before {choice} "
                           "was chosen")
    os.environ[ENV] = choice


def tensorflow():
    """The TensorFlow module, for the code that runs TensorFlow's own fast paths (tf.data pipelines,
    tf.function) when it is the run's backend: this module is the one that imports a backend."""
    import tensorflow as tf

    return tf


def configure(threads: int = 0, deterministic_ops: bool = True) -> None:
    """Op determinism as asked, and at most `threads` CPU threads when threads > 0, for the
    backend of this process (see the module's description)."""
    backend = name()
    if backend == TENSORFLOW:
        configure_tensorflow(threads, deterministic_ops)
    elif backend == JAX:
        flags = os.environ.get("XLA_FLAGS", "").split()
        flags = [f for f in flags if not f.startswith("--xla_gpu_deterministic_ops")]
        if deterministic_ops:
            flags.append(JAX_DETERMINISM)
        os.environ["XLA_FLAGS"] = " ".join(flags)
    elif backend == TORCH:
        import torch

        if deterministic_ops:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(deterministic_ops)
        if threads > 0:
            torch.set_num_threads(threads)


def configure_tensorflow(threads: int, deterministic_ops: bool = True) -> None:
    """Deterministic ops (unless turned off: cache.deterministic_ops), memory growth on every
    visible GPU (a job takes the memory it needs, not the whole device), and at most `threads` CPU
    threads when threads > 0."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as err:  # already initialised: nothing to change any more
            log.debug("memory growth on %s: %s", gpu.name, err)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    else:  # no public switch back; a process configured for both (tests) ends as it asked
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    if threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def device_description() -> str:
    """The device this process computes on: ``cpu``, or ``gpu <id>: <name>`` (information for the
    stores' provenance; no reader checks it)."""
    backend = name()
    if backend == TENSORFLOW:
        return _tensorflow_device()
    visible = os.environ.get(VISIBLE, "").split(",")[0] or "0"
    if backend == JAX:
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else f"gpu {visible}: {device.device_kind}"
    if backend == TORCH:
        import torch

        return f"gpu {visible}: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    return "unknown"


def _tensorflow_device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        if os.environ.get(VISIBLE):
            log.warning("%s=%s, but TensorFlow sees no GPU (a CPU build of TensorFlow, or no CUDA driver): "
                        "computing on the CPU", VISIBLE, os.environ[VISIBLE])
        return "cpu"
    visible = os.environ.get(VISIBLE, "")
    device = os.environ.get("AUGCACHE_GPU_NAME") or \
        tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return f"gpu {visible.split(',')[0] or 0}" + (f": {device}" if device else "")


# What this process compiled, by the objects it was compiled for (kept alive with it), so that
# the epochs of one job compile once.
_COMPILED: dict = {}


def jax_jit(function, key: tuple | None = None, keep=None):
    """`function` (arrays of the backend -> arrays) as one XLA program under JAX (jax.jit, retraced
    per batch shape), and as it is under the other backends (TensorFlow's callers compile with
    tf.function themselves). With a key, the function compiled first for that key; keep: the
    objects whose ids the key holds, kept alive so that no other object takes their ids."""
    if key is not None and key in _COMPILED:
        return _COMPILED[key][0]
    result = function
    if name() == JAX:
        import jax

        result = jax.jit(function)
    if key is not None:
        _COMPILED[key] = (result, keep)
    return result


def inference(model, preprocess):
    """``images -> float32 outputs`` of model in inference mode, for a backend other than
    TensorFlow, made once per model: a frozen base's. Under JAX its weights, as they are when this
    is first called, are passed to one compiled program (stateless_call) rather than baked into it."""
    from keras import ops

    key = ("inference", id(model), id(preprocess))
    if key in _COMPILED:
        return _COMPILED[key][0]
    run = _inference(model, preprocess, ops)
    _COMPILED[key] = (run, (model, preprocess))
    return run


def _inference(model, preprocess, ops):
    if name() == JAX:
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def run(trainable, non_trainable, images):
            out, _ = model.stateless_call(trainable, non_trainable, preprocess(images), training=False)
            return ops.cast(out, "float32")

        return lambda images: run(trainable, non_trainable, images)

    if name() == TORCH:
        import torch

        def run(images):
            with torch.no_grad():
                return ops.cast(model(preprocess(images), training=False), "float32")

        return run
    return lambda images: ops.cast(model(preprocess(images), training=False), "float32")
