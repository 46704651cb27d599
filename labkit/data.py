"""The shipped data: a checksum-verified, stratified Fashion-MNIST subset (and the full set when installed).

Nothing here downloads: `labkit data build` makes the subset from Debian's `dataset-fashion-mnist`
package, and `data/SHA256SUMS` guards the shipped file.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from labkit import env
from labkit.paths import DATA_DIR, SUMS_FILE
from labkit.errors import LabkitError

SUBSET_FILE = DATA_DIR / "fashion_mnist" / "fashion_mnist_subset.npz"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's package installs the originals
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
TRAIN_PER_CLASS, TEST_PER_CLASS = 1000, 200
REBUILD_HINT = "rebuild it with `labkit data build` (or restore it with `git checkout data/`)"


@dataclass
class Splits:
    """Train and test tensors, normalised, shaped (N, 1, 28, 28) float32 with int64 labels."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...] = CLASS_NAMES

    def to(self, device: torch.device | str) -> "Splits":
        """The same splits moved to `device` (kept there: no copy per batch)."""
        return Splits(*(t.to(device) for t in (self.X_train, self.y_train, self.X_test, self.y_test)),
                      classes=self.classes)

    def __repr__(self) -> str:
        return (f"Splits(train={len(self.y_train)}, test={len(self.y_test)}, "
                f"classes={len(self.classes)}, device={self.X_train.device})")


def sha256(path: Path) -> str:
    """The file's SHA-256 as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_sums(sums_file: Path | None = None) -> dict[str, str]:
    """The checksums in data/SHA256SUMS, keyed by path relative to data/."""
    sums_file = sums_file or SUMS_FILE
    if not sums_file.exists():
        raise LabkitError(f"{sums_file} is missing: restore it with `git checkout data/`.")
    sums = {}
    for number, line in enumerate(sums_file.read_text().splitlines(), start=1):
        if line.strip():
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise LabkitError(f"{sums_file} line {number} is not 'SHA256  NAME': restore the file with "
                                  "`git checkout data/SHA256SUMS`.")
            sums[parts[1].lstrip("*").strip()] = parts[0]
    return sums


# How each shipped file is made again (doctor's advice); `git checkout data/NAME` restores any of them.
REBUILD_COMMANDS = {"fashion_mnist/fashion_mnist_subset.npz": "labkit data build",
                    "pretrained/distillation_teacher.pt": "labkit pretrain distillation",
                    "pretrained/tiny_resnet_classes0-4.pt": "labkit pretrain transfer"}


def fix_hint(name: str) -> str:
    """How to get the shipped file `name` (relative to data/) back: rebuild it, or restore it from git."""
    restore = f"`git checkout data/{name}`"
    command = REBUILD_COMMANDS.get(name)
    return f"run `{command}` or {restore}" if command else f"restore it with {restore}"


def data_name(path: Path) -> str | None:
    """`path` relative to data/ as SHA256SUMS names it, or None when it lies outside data/."""
    path, root = Path(path).resolve(), DATA_DIR.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else None


def check_shipped(sums_file: Path | None = None) -> list[tuple[str, str]]:
    """(name, 'ok' | 'missing' | 'corrupted') for every file listed in data/SHA256SUMS."""
    return [(name, "missing" if not (DATA_DIR / name).is_file()
             else "ok" if sha256(DATA_DIR / name) == digest else "corrupted")
            for name, digest in expected_sums(sums_file).items()]


def update_sum(path: Path, sums_file: Path | None = None) -> tuple[str | None, str]:
    """Record `path`'s checksum in data/SHA256SUMS (its line replaced, or added); the other lines are kept
    as they are. Returns (the old digest or None, the new digest)."""
    sums_file = sums_file or SUMS_FILE
    name = data_name(path)
    if name is None:
        raise LabkitError(f"{path} is not under {DATA_DIR}: data/SHA256SUMS lists only files in data/.")
    new = sha256(path)
    old = expected_sums(sums_file).get(name)
    if old != new:
        lines = sums_file.read_text().splitlines()
        mine = [i for i, line in enumerate(lines)
                if line.strip() and line.split(maxsplit=1)[1].lstrip("*").strip() == name]
        if mine:
            lines[mine[0]] = f"{new}  {name}"
        else:
            lines.append(f"{new}  {name}")
        sums_file.write_text("\n".join(lines) + "\n")
    return old, new


def verify(path: Path, sums_file: Path | None = None, hint: str = REBUILD_HINT) -> None:
    """Raise a one-line LabkitError when `path` is missing or its checksum is not the shipped one.

    `hint` says how to get the file back (e.g. "rebuild it with `labkit pretrain transfer`").
    """
    path = Path(path)
    if not path.exists():
        raise LabkitError(f"{path} is missing: {hint}.")
    name = data_name(path) or path.name
    expected = expected_sums(sums_file).get(name)
    if expected is None:
        raise LabkitError(f"{name} has no line in data/SHA256SUMS: {hint}.")
    if sha256(path) != expected:
        raise LabkitError(f"{path} is corrupted (its SHA-256 does not match data/SHA256SUMS): {hint}.")


def _read_subset(path: Path) -> dict[str, np.ndarray]:
    verify(path)
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (the original MNIST format)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_originals(source: Path = SYSTEM_DIR) -> dict[str, np.ndarray]:
    """All 70,000 original images and labels from Debian's dataset-fashion-mnist package."""
    files = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
    missing = [name for name in files.values() if not (Path(source) / name).exists()]
    if missing:
        raise LabkitError(f"The full Fashion-MNIST is not in {source}: install it with "
                          "`sudo apt-get install dataset-fashion-mnist` (or use the shipped subset).")
    return {key: _read_idx(Path(source) / name) for key, name in files.items()}


def _stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picks))


def build_subset(source: Path = SYSTEM_DIR, out: Path = SUBSET_FILE, seed: int = 0) -> Path:
    """Make the shipped subset: 1,000 train and 200 test images per class, chosen with a fixed seed."""
    originals = read_originals(source)
    rng = np.random.default_rng(seed)
    train_idx = _stratified(originals["y_train"], TRAIN_PER_CLASS, rng)
    test_idx = _stratified(originals["y_test"], TEST_PER_CLASS, rng)
    x_train = originals["x_train"][train_idx]
    pixels = x_train.astype(np.float64) / 255.0
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        x_train=x_train, y_train=originals["y_train"][train_idx].astype(np.uint8),
        x_test=originals["x_test"][test_idx], y_test=originals["y_test"][test_idx].astype(np.uint8),
        train_index=train_idx.astype(np.int32), test_index=test_idx.astype(np.int32),
        mean=np.float32(pixels.mean()), std=np.float32(pixels.std()),
    )
    return out


def _normalise(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return (x - mean) / std


def _take(y: np.ndarray, n: int | None, classes: tuple[int, ...] | None, seed: int) -> np.ndarray:
    """Indices of up to `n` examples, stratified over `classes` (all by default)."""
    keep = np.flatnonzero(np.isin(y, classes)) if classes is not None else np.arange(len(y))
    if n is None or n >= len(keep):
        return keep
    if n < 1:
        raise LabkitError(f"A subset needs at least 1 example, got n={n}.")
    rng = np.random.default_rng(seed)
    groups = [keep[y[keep] == c] for c in np.unique(y[keep])]
    per_class = max(1, n // len(groups))
    picks = [rng.choice(g, min(per_class, len(g)), replace=False) for g in groups]
    return np.sort(np.concatenate(picks))


def load(*, n_train: int | None = None, n_test: int | None = None, classes: tuple[int, ...] | None = None,
         full: bool = False, seed: int = 0, device: torch.device | str = "cpu") -> Splits:
    """Fashion-MNIST as normalised tensors in memory.

    By default the shipped 10,000 / 2,000 subset; `n_train`/`n_test` take smaller stratified
    subsets, `classes` keeps only those labels (relabelled 0..k-1), `full=True` uses all 70,000
    images from Debian's package when it is installed.
    """
    if classes is not None:
        classes = tuple(sorted(set(classes)))
        if not classes or not all(0 <= c < 10 for c in classes):
            raise LabkitError(f"classes={classes} must be labels between 0 and 9.")
    if full:
        arrays = read_originals()
        mean, std = 0.2860, 0.3530  # of the shipped subset; the full set's are within 0.001
    else:
        arrays = _read_subset(SUBSET_FILE)
        mean, std = float(arrays["mean"]), float(arrays["std"])
    y_train, y_test = arrays["y_train"].astype(np.int64), arrays["y_test"].astype(np.int64)
    train_idx = _take(y_train, n_train, classes, seed)
    test_idx = _take(y_test, n_test, classes, seed)
    y_tr, y_te = torch.from_numpy(y_train[train_idx]), torch.from_numpy(y_test[test_idx])
    names = CLASS_NAMES
    if classes is not None:
        remap = torch.full((10,), -1, dtype=torch.int64)
        remap[list(classes)] = torch.arange(len(classes))
        y_tr, y_te = remap[y_tr], remap[y_te]
        names = tuple(CLASS_NAMES[c] for c in classes)
    splits = Splits(_normalise(arrays["x_train"][train_idx], mean, std), y_tr,
                    _normalise(arrays["x_test"][test_idx], mean, std), y_te, classes=names)
    return splits.to(device)


def load_for_mode(run_mode: str | None = None, **kwargs) -> Splits:
    """The shared task at the size of the run mode: 2,000 / 500 images in smoke mode, 10,000 / 2,000 in full."""
    n_train, n_test = env.pick(smoke=(2000, 500), full=(None, None), run_mode=run_mode)
    return load(n_train=kwargs.pop("n_train", n_train), n_test=kwargs.pop("n_test", n_test), **kwargs)


def loader(X: torch.Tensor, y: torch.Tensor, batch_size: int = 128, *, shuffle: bool = True,
           seed: int = 0, num_workers: int = 0, pin_memory: bool = False, drop_last: bool = False) -> DataLoader:
    """A DataLoader over in-memory tensors; seeded so that the shuffling order repeats."""
    if batch_size < 1:
        raise LabkitError(f"batch_size={batch_size} must be at least 1.")
    if len(X) != len(y):
        raise LabkitError(f"X has {len(X)} examples but y has {len(y)}: they must match.")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, pin_memory=pin_memory, drop_last=drop_last,
                      persistent_workers=num_workers > 0)
