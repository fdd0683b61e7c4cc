# What each job needs of a machine: its environment (--sdm conda), GPU, threads and memory; and
# the epochs each extraction job computes, which follow from the GPUs a workstation run holds.

# --sdm conda environments: the CPU build of TensorFlow for every rule, and the CUDA build for the
# rules that declare gpu=1 when software.tensorflow is gpu.
ENV = "../../envs/augcache.yaml"
GPU_ENV = (
    "../../envs/augcache-gpu.yaml" if config["software"]["tensorflow"] == "gpu" else ENV
)
# Training on stored features needs a GPU (and its environment) only when it fine-tunes layers
# of the base.
STORED_FEATURES_GPU = 1 if STAGE == "finetune" else 0
STORED_FEATURES_ENV = GPU_ENV if STAGE == "finetune" else ENV


def gpu_slots():
    """GPU jobs a workstation run holds at once (its gpu resource); None where each job gets a GPU
    of its own or there is no limit: a cluster run (--jobs), a job inside one, no gpu resource.
    """
    settings = workflow.resource_settings
    resources = settings.resources
    nodes = resources.get("_nodes")
    if (
        workflow.remote_exec
        or getattr(nodes, "value", nodes) is not None
        or "gpu" not in resources
    ):
        return None
    return getattr(resources["gpu"], "value", resources["gpu"])


# the epochs each extraction job computes in turn (cache.epochs_per_job)
EPOCH_GROUPS = SETTINGS.epoch_groups(gpu_slots())


def extraction_threads():
    """The threads of extract_epoch (the rule's, or --set-threads), so that a job of several
    epochs computes each as a job of one would."""
    return workflow.resource_settings.overwrite_threads.get("extract_epoch", 2)


def grouped_extraction_resources(epochs):
    """gpu=1 and the memory and runtime extract_epoch declares (profiles/default's set-resources,
    which name rules and so miss the jobs of several epochs), the runtime once for each epoch.
    """
    declared = workflow.resource_settings.overwrite_resources.get("extract_epoch", {})
    values = {
        name: getattr(declared[name], "value", declared[name])
        for name in ("mem_mb", "runtime")
        if name in declared
    }
    if isinstance(values.get("runtime"), (int, float)):
        values["runtime"] = values["runtime"] * len(epochs)
    return {"gpu": 1, **values}


def training_resources(mode):
    """A GPU for a mode that runs the base (or fine-tunes), and for a mode that reads stores the
    memory its stores take."""
    if MODES[mode].runs_base:
        return {"gpu": 1}
    return {"mem_mb": train_mem_mb, "gpu": STORED_FEATURES_GPU}


def training_env(mode):
    return GPU_ENV if MODES[mode].runs_base else STORED_FEATURES_ENV


def all_cores():
    """Threads of a local job that may use the whole machine: --cores, or every CPU when a cluster
    run gives no --cores (Snakemake caps local jobs to --local-cores)."""
    cores = workflow.resource_settings.cores
    return cores if isinstance(cores, int) else os.cpu_count()


def manifest_mem_mb(wildcards, input):
    """Memory (MB) of a manifest job: Python's own and the index and the epoch's table, about 20
    times the index CSV (measured: 222 MB for 100,000 training images, whose index takes 10 MB).
    """
    return int(300 + 20 * input.size_mb)


def train_mem_mb(wildcards, input):
    """Memory (MB) of a training job: its stores as float32 (up to 16 GB; beyond, it streams them)
    plus what TensorFlow and Python take, so several training jobs on one machine fit its memory.
    """
    return int(1500 + min(2.4 * input.size_mb, 16000))
