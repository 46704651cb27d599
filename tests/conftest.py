"""Shared fixtures: tiny synthetic data so unit tests take seconds."""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test workers on two cores: one intra-op thread each, or they oversubscribe the cores and
    # small-model training slows down ten-fold.
    torch.set_num_threads(1)

from labkit.data import Splits


@pytest.fixture
def tiny_splits() -> Splits:
    """256 train / 64 test 'images' whose class is readable from the mean brightness of a band."""
    g = torch.Generator().manual_seed(0)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 4, (n,), generator=g)
        X = torch.randn(n, 1, 28, 28, generator=g) * 0.3
        for c in range(4):
            X[y == c, :, 7 * c:7 * c + 7, :] += 1.5
        return X, y

    X_train, y_train = make(256)
    X_test, y_test = make(64)
    return Splits(X_train, y_train, X_test, y_test, classes=("a", "b", "c", "d"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Exercise catalogues (tests/exercise_catalogue.py): one test per exercise (`name`) and per mistake."""
    catalogue = getattr(metafunc.cls, "CATALOGUE", None)
    if not catalogue:
        return
    if "mistake" in metafunc.fixturenames:
        pairs = [(name, mistake) for name, entry in catalogue.items() for mistake in entry[4]]
        metafunc.parametrize("name, mistake", pairs, ids=[f"{n}: {m}" for n, m in pairs])
    elif "name" in metafunc.fixturenames:
        metafunc.parametrize("name", list(catalogue))
