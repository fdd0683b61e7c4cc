"""The Keras backend extraction computes with, and what each one needs to compute reproducibly.

TensorFlow is the default and the workflow's tested path. Under ``KERAS_BACKEND=jax`` (checked by
the suite on CPU) or ``torch``, extraction reads pixels from the pixel store and runs the same
augmentation (:mod:`augcache.augment`, Keras ops) and the same base; stores record the backend
(``keras_backend``), so stores of different backends are not mixed.

Op determinism (``cache.deterministic_ops``), per backend:

- tensorflow: ``tf.config.experimental.enable_op_determinism()``; on a GPU it forces deterministic
  cuDNN algorithms (some slower), and raises for ops without a deterministic kernel;
- jax: ``--xla_gpu_deterministic_ops=true`` in ``XLA_FLAGS``, set before JAX starts its GPU
  backend (XLA on the CPU is deterministic already);
- torch: ``torch.use_deterministic_algorithms(True)`` (with ``CUBLAS_WORKSPACE_CONFIG`` set as
  CUDA requires).
"""

from __future__ import annotations

import os

JAX_DETERMINISM = "--xla_gpu_deterministic_ops=true"


def name() -> str:
    """The Keras backend of this process (KERAS_BACKEND; the package sets tensorflow unless the
    user chose another), known without importing Keras."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def configure(threads: int = 0, deterministic_ops: bool = True) -> None:
    """Op determinism as asked, and at most `threads` CPU threads when threads > 0, for the
    backend of this process (see the module's description)."""
    backend = name()
    if backend == "tensorflow":
        from augcache.cache import configure_tensorflow

        configure_tensorflow(threads, deterministic_ops)
    elif backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "").split()
        flags = [f for f in flags if not f.startswith("--xla_gpu_deterministic_ops")]
        if deterministic_ops:
            flags.append(JAX_DETERMINISM)
        os.environ["XLA_FLAGS"] = " ".join(flags)
    elif backend == "torch":
        import torch

        if deterministic_ops:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(deterministic_ops)
        if threads > 0:
            torch.set_num_threads(threads)


def device_description() -> str:
    """The device this process computes on: ``cpu``, or ``gpu <id>: <name>`` (information for the
    stores' provenance; no reader checks it)."""
    backend = name()
    if backend == "tensorflow":
        from augcache.devices import device_description as tensorflow_device

        return tensorflow_device()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0] or "0"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else f"gpu {visible}: {device.device_kind}"
    if backend == "torch":
        import torch

        return f"gpu {visible}: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    return "unknown"


# What this process compiled, by the objects it was compiled for (kept alive with it), so that
# the epochs of one job compile once.
_COMPILED: dict = {}


def compiled(function, key: tuple | None = None, keep=None):
    """`function` (arrays of the backend -> arrays) compiled where the backend compiles: one XLA
    program under JAX (retraced per batch shape); as it is elsewhere (TensorFlow's callers compile
    with tf.function themselves). With a key, the function compiled first for that key; keep: the
    objects whose ids the key holds, kept alive so that no other object takes their ids."""
    if key is not None and key in _COMPILED:
        return _COMPILED[key][0]
    result = function
    if name() == "jax":
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
    if name() == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def run(trainable, non_trainable, images):
            out, _ = model.stateless_call(trainable, non_trainable, preprocess(images), training=False)
            return ops.cast(out, "float32")

        return lambda images: run(trainable, non_trainable, images)

    if name() == "torch":
        import torch

        def run(images):
            with torch.no_grad():
                return ops.cast(model(preprocess(images), training=False), "float32")

        return run
    return lambda images: ops.cast(model(preprocess(images), training=False), "float32")
