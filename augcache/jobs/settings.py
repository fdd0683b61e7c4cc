"""The config, interpreted in one place: what the rule files, the `augcache` command and the rule
scripts derive from it (the base to build, how features are stored, which runs a config asks for,
what each job's results depend on).

Plain values only, no TensorFlow: the rule files call it when Snakemake parses them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from functools import cached_property
from pathlib import Path

from augcache.augmentation.aliases import overlay_augment
from augcache.augmentation.feature_augment import FeatureAugmentConfig
from augcache.augmentation.manifest import AugmentConfig
from augcache.base.conv_base import BaseSpec
from augcache.base.hub import check_preset
from augcache.core import backend, paths
from augcache.jobs.spellings import respell
from augcache.training.head import HeadConfig
from augcache.training.modes import MODES, mode, stage

# The config schema (defaults included): workflow/schemas/config.schema.yaml, installed with the
# package as augcache/jobs/config.schema.yaml so that the command finds it outside the checkout.
log = logging.getLogger(__name__)

SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"


def load_config(config_paths) -> dict:
    """A config file, overlaid by the next ones (as ``snakemake --configfile``), validated against
    the schema, with its defaults."""
    import yaml
    from snakemake.utils import update_config, validate

    config: dict = {}
    for path in config_paths:
        overlay = yaml.safe_load(Path(path).read_text()) or {}
        for note in respell(overlay, f"{path}: "):
            log.warning("%s", note)
        augment = overlay_augment(config.get("augment", {}), overlay.get("augment", {}))
        update_config(config, overlay)
        if augment:
            config["augment"] = augment
    validate(config, str(SCHEMA), set_default=True)
    return config


class Settings:
    """A validated config (schema defaults set) and what follows from it."""

    def __init__(self, config: dict):
        respell(config)  # keys spelled the former way, read as today's (noted where the config is read)
        self.config = config

    # --- data ------------------------------------------------------------------------------------

    @property
    def data(self) -> dict:
        return self.config["data"]

    @property
    def uses_csv(self) -> bool:
        return bool(self.data["csv"])

    @property
    def uses_demo_data(self) -> bool:
        return self.data["dir"] == "demo" and not self.uses_csv

    @property
    def test_dir(self) -> str | None:
        return self.data["test_dir"]

    @property
    def pixel_store(self) -> bool:
        return bool(self.data["pixel_store"])

    @property
    def decode_shards(self) -> int:
        """Jobs the pixel store is decoded in (1: by the index step itself)."""
        return self.data["decode_shards"] if self.pixel_store else 1

    @property
    def pixel_size(self) -> list[int]:
        """(H, W) of the stored pixels: data.pixel_size, or the image size."""
        return list(self.data["pixel_size"] or self.data["image_size"])

    def data_source(self) -> str:
        """The folder or CSV listing the index is built from."""
        if self.uses_csv:
            return self.data["csv"]
        return paths.DEMO_IMAGES if self.uses_demo_data else self.data["dir"]

    @property
    def named_source(self) -> str:
        """The data source as the config names it, for the jobs' params: data.csv, or data.dir
        (``demo`` for the demo's images, which those jobs read from their inputs)."""
        return self.data["csv"] if self.uses_csv else self.data["dir"]

    def pixel_params(self) -> dict:
        return {"pixel_size": self.pixel_size, "resize": self.data["resize"]}

    # --- the conv base ---------------------------------------------------------------------------

    @property
    def uses_demo_base(self) -> bool:
        return self.config["conv_base"]["architecture"] == "demo"

    @property
    def fetches_weights(self) -> bool:
        """ImageNet weights are downloaded once by the workflow (not by each job)."""
        return self.config["conv_base"]["weights"] == "imagenet" and not self.uses_demo_base

    @property
    def fetched_weights(self) -> str:
        """Where fetched ImageNet weights are kept: one file per architecture name."""
        return paths.fetched_weights(self.config["conv_base"]["architecture"])

    def base_params(self) -> dict:
        """conv_base settings plus what else decides the base's features (the Keras backend among
        them), so every rule that reads the base recomputes when one changes. The demo base and
        fetched ImageNet weights are named as the config names them (``demo``, ``imagenet``): the
        jobs read those files from their inputs (see :func:`augcache.core.paths.base_with_files`)."""
        base = dict(self.config["conv_base"])
        base["image_size"] = list(self.data["image_size"])
        base["resize"] = self.data["resize"]
        base["seed"] = self.config["seed"]
        base["compute_dtype"] = self.config["cache"]["compute_dtype"]
        base["backend"] = self.backend
        return base

    def base_spec(self) -> BaseSpec:
        return BaseSpec.from_config(paths.base_with_files(self.base_params()))

    @property
    def backend(self) -> str:
        """The Keras backend of every job (see :func:`augcache.core.backend.chosen`)."""
        return backend.chosen(self.config["software"].get("backend"))

    def base_check_params(self) -> dict:
        """Everything the base check depends on: the base, the storage dtype and the pixels."""
        return {"base": self.base_params(), "dtype": self.config["cache"]["dtype"],
                "pixel_size": self.pixel_size}

    def base_check_key(self) -> str:
        """A hash of what the base check depends on, which names its record and its benchmark."""
        text = json.dumps(self.base_check_params(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def base_check_record(self) -> str:
        """The base check's record for this config."""
        return paths.CHECKED_BASE.format(key=self.base_check_key())

    # --- the cache -------------------------------------------------------------------------------

    @property
    def stage(self) -> str:
        """"train" (the head on the base's features) or "finetune" (with conv_base.split)."""
        return stage(self.config)

    def cache_params(self) -> dict:
        cache = self.config["cache"]
        return {k: cache[k] for k in ("dtype", "compression", "batch_size", "deterministic_ops")}

    def augment(self) -> AugmentConfig:
        return AugmentConfig.from_config(self.config["augment"])

    def extract_params(self, **extra) -> dict:
        """What an extraction job's features depend on (plus extra, e.g. its data split)."""
        return {"base": self.base_params(), "cache": self.cache_params(), "pixel_size": self.pixel_size,
                **extra}

    def epochs(self) -> list[int]:
        """Cached epoch numbers 0..K-1 of K = cache.k."""
        return list(range(self.config["cache"]["k"]))

    def epoch_groups(self, gpu_slots: int | None) -> list[list[int]]:
        """The epochs each extraction job computes, in turn: cache.epochs_per_job consecutive
        epochs of 0..K-1 (K the largest of cache.k and train.sweep_k), or with auto
        ceil(K / gpu_slots) (one job per GPU slot; gpu_slots None: a cluster, one epoch a job)."""
        k = max(self.k_values())
        per_job = self.config["cache"]["epochs_per_job"]
        if per_job == "auto":
            per_job = -(-k // gpu_slots) if gpu_slots else 1
        if self.config["cache"]["shards_per_epoch"] > 1:
            per_job = 1
        return [list(range(first, min(k, first + per_job))) for first in range(0, k, per_job)]

    def storage_params(self) -> dict:
        """The settings that decide how many stores a run writes and their sizes."""
        return {
            "cache": {k: self.config["cache"][k] for k in ("k", "dtype")},
            "train": {k: self.config["train"][k] for k in ("repeats", "sweep_k", "modes")},
            "data": {k: self.data[k] for k in ("pixel_store", "pixel_size", "image_size")},
            "eval": {k: self.config["eval"][k] for k in ("tta_views", "knn")},
        }

    # --- training runs ---------------------------------------------------------------------------

    def head(self) -> HeadConfig:
        return HeadConfig.from_config(self.config["head"])

    @property
    def modes(self) -> list[str]:
        return list(self.config["train"]["modes"])

    def k_values(self) -> list[int]:
        """K of every cached run: train.sweep_k and cache.k."""
        return sorted(set(self.config["train"]["sweep_k"]) | {self.config["cache"]["k"]})

    def repeats(self) -> list[int]:
        return list(range(self.config["train"]["repeats"]))

    def runs(self) -> list[tuple]:
        """(mode, K, repeat, fold) of every training run the config asks for, mode by mode (see
        :meth:`augcache.training.modes.Mode.runs`): what the rules, the report and its cost account
        read. With eval.folds, the runs of each fold (fold None: one train/val split)."""
        k_main = self.config["cache"]["k"]
        wanted = [m for m in MODES.values() if m.always or m.name in self.modes]
        return [(m, *run) for m in wanted for run in m.runs(self.k_values(), k_main, self.repeats(), self.folds)]

    def run_dirs(self) -> list[str]:
        """The folder of every training run the config asks for (:meth:`runs`)."""
        return [m.run_dir(k, r, self.stage, f) for m, k, r, f in self.runs()]

    @property
    def folds(self) -> int:
        """eval.folds: F folds of every labelled image, 0 for one train/val split."""
        return int((self.config.get("eval") or {}).get("folds", 0))  # an earlier version's config may lack it

    def cache_repeat(self, repeat) -> int:
        """The repeat whose manifests and stores a run of this repeat reads: its own, or with
        eval.folds repeat 0's, the one cache every fold and repeat trains on (a repeat of the folds
        draws a new split and seeds a new head, and adds only heads)."""
        return 0 if self.folds else int(repeat)

    def pooled_params(self) -> dict:
        """What the stores' rows depend on beyond a split: with eval.folds, every labelled image
        (the same for every F); nothing without, so that a config without folds keeps its params."""
        return {"pooled": True} if self.folds else {}

    def train_params(self, mode: str, seed) -> dict:
        """What a training job's results depend on: its mode, seed, head and base, and for modes
        that augment or run the base, the augmentation (images' or features') and the pixel size."""
        params = {"mode": mode, "seed": seed, "head": self.config["head"], "base": self.base_params(),
                  "cache": self.cache_params(), **({"folds": self.folds} if self.folds else {})}
        if MODES[mode].manifests:
            params["augment"] = self.config["augment"]
        if MODES[mode].feature_augment:
            params["feature_augment"] = self.config["feature_augment"]
        if MODES[mode].runs_base:
            params["pixel_size"] = self.pixel_size
        if self.stage == "finetune":
            params["finetune"] = self.config["finetune"]
        return params

    # --- evaluation ------------------------------------------------------------------------------

    @property
    def tta_views(self) -> int:
        """eval.tta_views: augmented views of each validation and test image, 0 for none."""
        return int(self.config["eval"]["tta_views"])

    def tta_params(self) -> dict:
        """What the test-time views' numbers depend on: the augmentation (augment with the
        eval.tta_augment overlay) and the seed."""
        return {"augment": overlay_augment(self.config["augment"], self.config["eval"]["tta_augment"]),
                "seed": self.config["seed"]}

    def knn_params(self) -> dict | None:
        """eval.knn with its defaults, None when off."""
        knn = self.config["eval"]["knn"]
        return None if knn is None else {"k": 20, "temperature": 0.07, **knn}

    def check_knn_bank(self, n_train: int, counted_in: str = "") -> None:
        """ValueError naming eval.knn.k when it asks for more neighbours than the smaller bank (the
        unaugmented features of the n_train training images) holds; counted_in: where they were
        counted, said in the message."""
        knn = self.knn_params()
        if knn is not None and int(knn["k"]) > n_train:
            raise ValueError(f"eval.knn.k: {knn['k']} neighbours, but the k-NN's unaugmented bank holds the "
                             f"{n_train} training images{counted_in}; set k to at most {n_train}")

    def check_knn_against(self, index_path) -> None:
        """check_knn_bank with the training images of an index made before (nothing without one),
        so that a k too large stops a run before any job, not at its end."""
        if self.knn_params() is None or not Path(index_path).is_file():
            return
        from augcache.data.dataset import read_index

        self.check_knn_bank(int((read_index(index_path, ["split"])["split"] == "train").sum()),
                            f" of {index_path} (the index of the last run)")

    # --- variants --------------------------------------------------------------------------------

    def variant(self, name: str) -> "Settings":
        """The settings of variant `name`: this config with its overlay merged in, without variants
        of its own, validated and checked like a config of its own; ValueError names the variant."""
        from snakemake.utils import update_config, validate

        merged = copy.deepcopy(self.config)
        overlay = copy.deepcopy(self.config["variants"][name])
        update_config(merged, overlay)
        merged["variants"] = {}
        try:
            merged["augment"] = overlay_augment(self.config["augment"], overlay.get("augment", {}))
            validate(merged, str(SCHEMA), set_default=True)
            variant = Settings(merged)
            variant.check()
        except Exception as err:  # the schema's WorkflowError, or a check's ValueError
            raise ValueError(f"variants.{name}: {err}") from None
        return variant

    # --- checks that need no job -----------------------------------------------------------------

    def check(self) -> None:
        """Raise ValueError, naming the key, for a mistake no job is needed to find: a missing data
        folder, CSV or base file, a reversed range, pixels smaller than the images, a sweep with a
        split base."""
        if self.uses_csv and not Path(self.data["csv"]).is_file():
            raise ValueError(f"data.csv: file {self.data['csv']!r} does not exist")
        if not self.uses_csv and not self.uses_demo_data and not Path(self.data["dir"]).is_dir():
            raise ValueError(f"data.dir: folder {self.data['dir']!r} does not exist")
        user_base = BaseSpec.from_config({**self.config["conv_base"], "image_size": [1, 1]})
        if user_base.is_hub:
            check_preset(user_base.preset, user_base.preprocessing)
        elif user_base.preset or user_base.preprocessing:
            key = "preset" if user_base.preset else "preprocessing"
            raise ValueError(f"conv_base.{key}: {key} is for a keras-hub backbone, but conv_base.architecture "
                             f"is {user_base.architecture!r}; set it to keras_hub")
        for key, path in user_base.files.items():
            kind = "model" if key == "conv_base.architecture" else "weights"
            if not Path(path).is_file():
                raise ValueError(f"{key}: {kind} file {path!r} does not exist")
        for name in self.modes:
            mode(name)  # one of the modes table
        # ranges in order, Keras layer spellings that have a meaning here
        self.augment()
        if self.tta_views:
            try:
                AugmentConfig.from_config(self.tta_params()["augment"])
            except ValueError as err:
                raise ValueError(f"eval.tta_augment (over augment): {err}") from None
        feature_augment = FeatureAugmentConfig.from_config(self.config["feature_augment"])
        augmented = [name for name in self.modes if MODES[name].feature_augment]
        # any pooling (None keeps the map) makes vectors
        if feature_augment.spatial and user_base.pooling is not None and augmented:
            raise ValueError(
                f"feature_augment.flip and feature_augment.crop transform spatial features, but conv_base.pooling "
                f"{user_base.pooling!r} makes vectors (train.modes {', '.join(augmented)}): set them to false "
                "and 0, or conv_base.pooling to null")
        image_size = self.data["image_size"]
        if any(p < i for p, i in zip(self.pixel_size, image_size)):
            raise ValueError(
                f"data.pixel_size: {self.pixel_size} is smaller than data.image_size {image_size}; pixels "
                "are kept at the image size or larger"
            )
        if self.folds:
            self.check_folds()
        if self.stage == "finetune" and self.config["head_sweep"]:
            raise ValueError(
                "head_sweep: a sweep chooses among heads trained on the base's features; with "
                "conv_base.split the runs fine-tune the top of the base instead. Choose the head with "
                "a sweep without conv_base.split first, then set it in head: and split the base"
            )

    def check_folds(self) -> None:
        """ValueError naming the key that eval.folds cannot go with yet."""
        if self.folds < 2:
            raise ValueError(f"eval.folds: {self.folds} fold; cross-validation needs at least 2 (0: off)")
        if self.config["variants"]:
            raise ValueError("eval.folds: cross-validation does not combine with variants yet; set "
                             "variants to {} or eval.folds to 0")

    @cached_property
    def csv_has_test_rows(self) -> bool:
        """Whether the CSV listing has test rows. Every job process asks when it parses the workflow,
        so only the split column is read (a tenth of the time of the whole listing)."""
        import pandas as pd

        path = self.data["csv"]
        if "split" not in pd.read_csv(path, dtype=str, nrows=0).columns:
            return False
        split = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["split"])["split"]
        return bool((split.str.strip() == "test").any())

    @property
    def has_test(self) -> bool:
        """Images scored once by the exported model: data.test_dir, or a CSV listing's test rows."""
        return bool(self.test_dir) or (self.uses_csv and self.csv_has_test_rows)
