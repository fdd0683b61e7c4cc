"""What a feature store records of what made it: the base and its files, the augmentation, the
extraction settings of the cache section (:class:`CacheConfig`), the backend. Extraction writes these fields into every
store (:class:`augcache.store.features.FeatureWriter` takes them as a plain mapping) and training
and scoring ask for them back (:func:`augcache.store.features.check_store`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augcache.augmentation.manifest import AugmentConfig
from augcache.base.conv_base import BaseSpec, weights_sha256
from augcache.base.hub import preset_sha256
from augcache.core import backend
from augcache.core.paths import HASH_MEMO
from augcache.core.provenance import canonical_json, file_sha256


@dataclass(frozen=True)
class CacheConfig:
    """How features are computed and stored (not what is augmented)."""

    dtype: str = "float16"
    compression: str | None = None
    batch_size: int = 64
    threads: int = 0  # 0: TensorFlow's default
    # TensorFlow's op determinism: the same features bit for bit on every run on the same device
    deterministic_ops: bool = True


def config_provenance(spec: BaseSpec, aug: AugmentConfig | None, cache: CacheConfig) -> dict:
    """Provenance fields known from the cache alone (no model needs to be built)."""
    files = list(spec.files)
    weights_file = file_sha256(spec.file_path(files[0]), HASH_MEMO) if files else ""
    preset = {"base_preset": spec.preset, "preset_sha256": preset_sha256(spec.preset),
              "base_preprocessing": canonical_json(spec.preprocessing) if spec.preprocessing else "converter",
              } if spec.is_hub else {}
    return preset | {
        "base_architecture": spec.architecture,
        "base_weights": "null" if spec.weights is None else str(spec.weights),
        "base_options": canonical_json(spec.options),
        "base_layer": spec.layer or "",
        "base_split": spec.split_at or "",
        "pooling": spec.pooling or "none",
        "image_size": canonical_json(list(spec.image_size)),
        "resize": spec.resize,
        "compute_dtype": spec.compute_dtype,
        "weights_file_sha256": weights_file,
        "augmentation": canonical_json(aug.to_dict()) if aug is not None else "none",
        "dtype": np.dtype(cache.dtype).name,
        "deterministic_ops": "true" if cache.deterministic_ops else "false",
        "keras_backend": backend.name(),
    }


def base_provenance(spec: BaseSpec, model, bottom=None) -> dict:
    """The fields that name a built base's weights (and, with spec.split_at, its bottom's, whose
    output the store holds)."""
    fields = {"weights_sha256": weights_sha256(model)}
    if spec.split_at:
        fields["bottom_weights_sha256"] = weights_sha256(bottom)
    return fields


def expected_provenance(spec: BaseSpec, model, aug: AugmentConfig | None, cache: CacheConfig,
                        bottom=None) -> dict:
    """Every provenance field of a store made under these cache with this base."""
    return dict(config_provenance(spec, aug, cache), **base_provenance(spec, model, bottom))
