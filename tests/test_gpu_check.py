"""The device check (benchmarks/gpu_check.py) at CPU sizes under JAX and under torch: every figure
it prints, two extractions of an epoch byte-identical among them."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, WITHOUT_TENSORFLOW


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_device_check_runs_without_tensorflow_and_prints_every_figure(backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    # no TensorFlow in the process, as on a GPU machine that has only JAX or PyTorch
    code = (WITHOUT_TENSORFLOW + "import runpy; sys.argv = ['gpu_check.py', '--small']; "
            f"runpy.run_path({str(ROOT / 'benchmarks/gpu_check.py')!r}, run_name='__main__'); "
            "assert 'tensorflow' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line["check"]: line for line in map(json.loads, result.stdout.splitlines())}
    assert list(lines) == ["device", "extraction", "feed", "bfloat16", "determinism", "memory"]
    assert lines["device"]["backend"] == backend and lines["device"]["device"] == "cpu"
    extraction = lines["extraction"]
    assert len(extraction["epochs_images_per_s"]) == 2 and min(extraction["epochs_images_per_s"]) > 0
    assert extraction["bare_base_images_per_s"] > 0 < extraction["extraction_over_bare"]
    assert lines["feed"]["manifest_order_images_per_s"] > 0 < lines["feed"]["storage_order_images_per_s"]
    assert 0 < lines["bfloat16"]["largest_difference_over_largest_feature"] < 0.1
    assert lines["determinism"] == {"check": "determinism", "byte_identical": True, "largest_difference": 0.0}
    assert lines["memory"]["peak_rss_bytes"] > 0
