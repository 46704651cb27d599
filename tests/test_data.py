import shutil

import numpy as np
import pytest
import torch

from labkit import LabkitError, data, paths


def test_shipped_subset_is_balanced_normalised_and_verified():
    splits = data.load()
    assert splits.X_train.shape == (10_000, 1, 28, 28) and splits.X_test.shape == (2_000, 1, 28, 28)
    assert torch.equal(splits.y_train.bincount(), torch.full((10,), 1000))
    assert torch.equal(splits.y_test.bincount(), torch.full((10,), 200))
    assert abs(splits.X_train.mean().item()) < 1e-3 and abs(splits.X_train.std().item() - 1) < 1e-3


def test_subsets_are_stratified_and_classes_relabelled():
    splits = data.load(n_train=500, n_test=100, classes=(5, 6, 7, 8, 9))
    assert torch.equal(splits.y_train.bincount(), torch.full((5,), 100))
    assert splits.classes[0] == "Sandal" and splits.y_test.max().item() == 4


def test_smoke_mode_is_smaller():
    assert len(data.load_for_mode("smoke").y_train) == 2000
    assert len(data.load_for_mode("full").y_train) == 10_000


def test_bad_arguments_say_what_to_do():
    with pytest.raises(LabkitError, match="between 0 and 9"):
        data.load(classes=(3, 12))
    with pytest.raises(LabkitError, match="at least 1"):
        data.load(n_train=0)
    with pytest.raises(LabkitError, match="batch_size"):
        data.loader(torch.zeros(4, 1), torch.zeros(4), batch_size=0)
    with pytest.raises(LabkitError, match="must match"):
        data.loader(torch.zeros(4, 1), torch.zeros(3))


def test_corrupted_file_names_the_file_and_the_fix(tmp_path, monkeypatch):
    broken = tmp_path / "fashion_mnist" / "fashion_mnist_subset.npz"
    broken.parent.mkdir()
    shutil.copy(data.SUBSET_FILE, broken)
    with open(broken, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    shutil.copy(paths.SUMS_FILE, tmp_path / "SHA256SUMS")
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    monkeypatch.setattr(data, "SUBSET_FILE", broken)
    with pytest.raises(LabkitError, match="corrupted.*labkit data build"):
        data.load()
    broken.unlink()
    with pytest.raises(LabkitError, match="missing.*labkit data build"):
        data.load()


def test_missing_full_dataset_says_how_to_install(tmp_path):
    with pytest.raises(LabkitError, match="apt-get install dataset-fashion-mnist"):
        data.read_originals(tmp_path)


@pytest.mark.skipif(not data.SYSTEM_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_build_reproduces_the_shipped_file(tmp_path):
    out = data.build_subset(out=tmp_path / "subset.npz")
    assert data.sha256(out) == data.expected_sums()["fashion_mnist/fashion_mnist_subset.npz"]


@pytest.mark.skipif(not data.SYSTEM_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_full_dataset_has_all_images():
    splits = data.load(full=True)
    assert len(splits.y_train) == 60_000 and len(splits.y_test) == 10_000


def test_loader_shuffles_the_same_way_for_the_same_seed():
    X, y = torch.arange(20).float().unsqueeze(1), torch.arange(20)
    first = [yb.tolist() for _, yb in data.loader(X, y, 5, seed=1)]
    again = [yb.tolist() for _, yb in data.loader(X, y, 5, seed=1)]
    other = [yb.tolist() for _, yb in data.loader(X, y, 5, seed=2)]
    assert first == again and first != other
    assert sorted(np.concatenate(first).tolist()) == list(range(20))
