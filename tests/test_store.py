import h5py
import numpy as np
import pytest

from augcache.core.provenance import ProvenanceError
from augcache.store.features import FeatureWriter, check_store, read_attrs
from augcache.store.merge import merge_epochs

ATTRS = {"split": "train", "weights_sha256": "aaa", "augmentation": "{}"}


def write_epoch(path, epoch, manifest, attrs=ATTRS, n=6, value=0.0):
    from augcache.core.provenance import sha256_file

    fields = dict(attrs, epoch=epoch, manifest_sha256=sha256_file(manifest))
    features = np.full((n, 2, 3), value + epoch, np.float32)
    features[:, 1, 2] += np.arange(n)  # samples differ, as real features do (constant stores are refused)
    with FeatureWriter(path, n, (2, 3), "float16", fields) as writer:
        writer.write(features, np.arange(n) % 2, [f"s{i}" for i in range(n)])


@pytest.fixture
def manifests(tmp_path):
    paths = []
    for e in range(3):
        path = tmp_path / f"epoch_{e}.csv"
        path.write_text(f"manifest {e}\n")
        paths.append(path)
    return paths


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with FeatureWriter(path, 4, (3,), "float32", ATTRS) as writer:
            writer.write(np.zeros((2, 3)), [0, 1], ["a", "b"])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_short_write_is_an_error_and_leaves_no_file(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(ValueError, match="2 of 4 rows"):
        with FeatureWriter(path, 4, (3,), "float32", ATTRS) as writer:
            writer.write(np.zeros((2, 3)), [0, 1], ["a", "b"])
    assert list(tmp_path.iterdir()) == []


def test_store_without_completion_mark_is_refused(tmp_path, manifests):
    path = tmp_path / "e.h5"
    write_epoch(path, 0, manifests[0])
    with h5py.File(path, "a") as handle:
        del handle.attrs["complete"]
    with pytest.raises(ProvenanceError, match=f"{path}: store is incomplete"):
        read_attrs(path)


def test_check_store_names_the_mismatching_field(tmp_path, manifests):
    path = tmp_path / "e.h5"
    write_epoch(path, 0, manifests[0])
    assert check_store(path, {"weights_sha256": "aaa"})["dtype"] == "float16"
    with pytest.raises(ProvenanceError, match=f"{path}: provenance field 'weights_sha256' is 'aaa'"):
        check_store(path, {"weights_sha256": "bbb"})


def test_merge_gives_one_store_readable_from_any_folder(tmp_path, manifests, monkeypatch):
    epochs = [tmp_path / "train" / f"epoch_{e}.h5" for e in range(3)]
    for e, path in enumerate(epochs):
        write_epoch(path, e, manifests[e])
    out = tmp_path / "train.h5"
    attrs = merge_epochs(epochs, manifests, out)
    assert attrs["bytes_per_sample_epoch"] == 2 * 3 * 2
    assert attrs["epochs"] == 3
    monkeypatch.chdir(tmp_path / "train")
    with h5py.File(out, "r") as handle:
        assert handle["features"].shape == (3, 6, 2, 3)
        assert [float(handle["features"][e, 0, 0, 0]) for e in range(3)] == [0.0, 1.0, 2.0]
        assert handle["labels"].shape == (3, 6)
        assert handle["sample_ids"][1, 2].decode() == "s2"


def test_merge_refuses_an_epoch_made_with_other_weights(tmp_path, manifests):
    epochs = [tmp_path / f"epoch_{e}.h5" for e in range(3)]
    for e, path in enumerate(epochs):
        attrs = dict(ATTRS, weights_sha256="other") if e == 2 else ATTRS
        write_epoch(path, e, manifests[e], attrs=attrs)
    with pytest.raises(ProvenanceError, match=f"{epochs[2]}: provenance field 'weights_sha256'"):
        merge_epochs(epochs, manifests, tmp_path / "train.h5")
    assert not (tmp_path / "train.h5").exists()


def test_merge_refuses_an_epoch_of_another_manifest(tmp_path, manifests):
    epochs = [tmp_path / f"epoch_{e}.h5" for e in range(3)]
    for e, path in enumerate(epochs):
        write_epoch(path, e, manifests[e])
    manifests[1].write_text("changed\n")
    with pytest.raises(ProvenanceError, match=f"{epochs[1]}: provenance field 'manifest_sha256'"):
        merge_epochs(epochs, manifests, tmp_path / "train.h5")
