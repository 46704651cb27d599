"""The input pipeline as a bottleneck: decode and augment on the fly, cache, batch, or keep it on the device.

Four ways to feed the same model the same augmented images (pad 2, random 28×28 crop, random
left-right flip), from slowest to fastest:

- naive:     each image is a PNG decoded one at a time in `__getitem__`, normalised and augmented
             per sample, collated by a DataLoader (optionally in `num_workers` worker processes);
- cached:    decoded and normalised once up front, kept in memory; still augmented per sample;
- batched:   whole batches sliced from the in-memory tensor and augmented with a few tensor ops;
- on_device: the batched pipeline with the whole dataset already on the device (on a CPU the
             device *is* memory, so this equals `batched`; on a GPU it saves a copy per batch).

Headline (`labkit bench dataloading`): training samples/s of the lab's small CNN fed by each
pipeline (and by the naive one with 1 and 2 workers). Every training step times `next(iterator)`
(waiting for data) apart from copy + forward + backward + step (computing), device synchronised.
Each configuration is measured in several windows, interleaved with the others and rotated in
order; each window builds a fresh loader, runs untimed warm-up steps (worker start-up, prefetch),
then times `steps` steps; the median window is reported. batched_vs_naive = batched / naive samples/s
(the pipeline the lesson builds, chosen before measuring); best_vs_naive = the fastest of all / naive
(a maximum over noisy variants: read it beside batched_vs_naive).

What augmentation buys besides cost: `augmentation_effect` trains the same model on a small training
set with and without the random crops and flips, over seeds, and measures test accuracy and the
train − test gap (accuracy on the un-augmented training images minus test accuracy).
"""

from __future__ import annotations

import statistics
import struct
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit import data, env, models, stats, train
from labkit.errors import LabkitError, check_number
from labkit.results import BenchReport, ResultCard

PIPELINES = ("naive", "cached", "batched", "on_device")
PAD = 2  # pixels of zero padding around each image before the random 28×28 crop


# ============================================================================ settings

@dataclass
class LoaderSetting:
    """One way to feed the model: the pipeline and the DataLoader knobs it uses."""

    pipeline: str = "naive"          # 'naive', 'cached', 'batched' or 'on_device'
    batch_size: int = 128
    num_workers: int = 0             # worker processes preparing batches (DataLoader pipelines only)
    pin_memory: bool = False         # page-locked host memory for faster copies to a GPU (ignored on a CPU)
    persistent_workers: bool = False  # keep workers alive between epochs instead of restarting them
    prefetch_factor: int = 2         # batches each worker prepares ahead (only with workers)
    read_latency_ms: float = 0.0     # simulated storage latency per image (a slow disk or network share)
    mp_context: str | None = None    # how workers start: None (the OS default), 'fork' or 'spawn'


@dataclass
class LoadingConfig:
    """The headline experiment's settings (saved with the results)."""

    model: str = "small_cnn"     # the model being fed: the lab's workhorse CNN
    n_images: int | None = None  # training images (None: the whole shipped subset, 10,000)
    batch_size: int = 128
    steps: int = 20              # timed training steps per window
    warmup_steps: int = 4        # untimed steps first: worker start-up and the prefetch queue filling
    repeats: int = 3             # windows per configuration, interleaved; the median is reported
    lr: float = 0.05             # SGD with momentum 0.9, as everywhere in the lab
    seed: int = 0


def config_for(run_mode: str) -> LoadingConfig:
    return env.pick(smoke=LoadingConfig(n_images=2000, steps=4, warmup_steps=2, repeats=1),
                    full=LoadingConfig(), run_mode=run_mode)


# The configurations the headline compares, by name.
HEADLINE_SETTINGS = {
    "naive": LoaderSetting("naive"),
    "naive_1worker": LoaderSetting("naive", num_workers=1),
    "naive_2workers": LoaderSetting("naive", num_workers=2),
    "cached": LoaderSetting("cached"),
    "batched": LoaderSetting("batched"),
    "on_device": LoaderSetting("on_device"),
}


# Bounds on the knobs: beyond them a setting only takes longer, or starts more processes than a laptop has.
MAX_BATCH_SIZE = 10_000
MAX_WORKERS = 16
MAX_PREFETCH = 64
MAX_READ_LATENCY_MS = 100.0


def check_setting(setting: LoaderSetting) -> None:
    """Raise a one-line LabkitError for a setting that cannot work."""
    if setting.pipeline not in PIPELINES:
        raise LabkitError(f"pipeline={setting.pipeline!r} is not a pipeline: choose one of {', '.join(PIPELINES)}.")
    check_number("batch_size", setting.batch_size, low=1, high=MAX_BATCH_SIZE, integer=True)
    check_number("num_workers", setting.num_workers, low=0, high=MAX_WORKERS, integer=True,
                 hint="0 loads in this process; each worker is a process, more than the cores only queue")
    check_number("prefetch_factor", setting.prefetch_factor, low=1, high=MAX_PREFETCH, integer=True)
    check_number("read_latency_ms", setting.read_latency_ms, low=0, high=MAX_READ_LATENCY_MS,
                 hint="a local SSD reads an image in well under 1 ms, a slow network share in ~10 ms")
    if setting.mp_context not in (None, "fork", "spawn", "forkserver"):
        raise LabkitError(f"mp_context={setting.mp_context!r}: use None, 'fork', 'spawn' or 'forkserver'.")


def effective_setting(setting: LoaderSetting, device: torch.device | str) -> tuple[LoaderSetting, list[str]]:
    """The setting as it really runs on `device`, and a note for each knob that has no effect there."""
    check_setting(setting)
    notes = []
    if setting.pipeline in ("batched", "on_device") and setting.num_workers:
        notes.append("num_workers is ignored: the batched pipelines use no DataLoader")
        setting = replace(setting, num_workers=0)
    if setting.pin_memory and torch.device(device).type != "cuda":
        notes.append("pin_memory only helps copies to a GPU: ignored here")
    return setting, notes


def seeded_model(name: str, device: torch.device | str = "cpu", seed: int = 0) -> nn.Module:
    """The lab's model `name` with the weights `seed` gives, on `device`: every measurement starts alike."""
    env.seed_everything(seed)
    return models.build(name).to(device)


# ============================================================================ the images as "files"

def encode_png(pixels: np.ndarray) -> bytes:
    """A grayscale 8-bit PNG of one H×W uint8 image, with the standard library only (zlib + struct)."""
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))  # filter byte 0 before each row

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8 bits, grayscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def decode_png(png: bytes) -> torch.Tensor:
    """The (1, H, W) uint8 image in a PNG written by `encode_png`: inflate, then drop each row's filter byte."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise LabkitError("not a PNG file: the data is corrupted; rebuild the source with make_source().")
    w, h = struct.unpack(">II", png[16:24])
    pos, idat = 8, b""
    while pos < len(png):
        (length,), tag = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        if tag == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, w + 1)
    return torch.from_numpy(rows[:, 1:].copy()).unsqueeze(0)


@dataclass
class Source:
    """The training images three ways: PNG 'files', uint8 pixels, and the normalised tensor."""

    pngs: list[bytes]          # what a dataset on disk holds: one compressed file per image
    X: torch.Tensor            # (N, 1, 28, 28) float32, normalised: the decoded, cached version
    y: torch.Tensor            # (N,) int64 labels
    mean: float
    std: float

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> "Source":
        """The first `n` images (a short epoch, e.g. for start-up measurements)."""
        return Source(self.pngs[:n], self.X[:n], self.y[:n], self.mean, self.std)


def make_source(images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> Source:
    """Encode every image as a PNG once (the 'files') and decode + normalise once (the cache)."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise LabkitError(f"images must be uint8 shaped (N, H, W), got {images.dtype} {images.shape}.")
    if len(images) != len(labels):
        raise LabkitError(f"{len(images)} images but {len(labels)} labels: they must match.")
    pngs = [encode_png(img) for img in images]
    X = (torch.from_numpy(images).unsqueeze(1).float() / 255 - mean) / std
    return Source(pngs, X, torch.as_tensor(labels, dtype=torch.int64), float(mean), float(std))


def load_source(n_images: int | None = None) -> Source:
    """The shipped Fashion-MNIST training images (checksum-verified), the first `n_images` of them."""
    data.verify(data.SUBSET_FILE)
    with np.load(data.SUBSET_FILE) as npz:
        images, labels = npz["x_train"], npz["y_train"].astype(np.int64)
        mean, std = float(npz["mean"]), float(npz["std"])
    if n_images is not None:
        if n_images < 1:
            raise LabkitError(f"n_images={n_images} must be at least 1.")
        images, labels = images[:n_images], labels[:n_images]
    return make_source(images, labels, mean, std)


# ============================================================================ augmentation

def augment_one(img: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """One (C, H, W) image: pad by PAD, crop H×W at offset (dy, dx), mirror left-right if `flip`."""
    h, w = img.shape[-2:]
    out = nn.functional.pad(img, (PAD, PAD, PAD, PAD))[:, dy:dy + h, dx:dx + w]
    return out.flip(-1) if flip else out


def gather_crops(padded: torch.Tensor, idx: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
                 flip: torch.Tensor) -> torch.Tensor:
    """Select images `idx` from an already padded (N, 1, H+2·PAD, W+2·PAD) tensor and crop + flip
    each with its own choices, in ONE indexing operation: image idx[n], row dy[n] + r, column dx[n] + c
    (read backwards when flipped). Only small (n, 28) index tensors are built on the side."""
    # shown in notebook 02_data_loading
    h, w = padded.shape[-2] - 2 * PAD, padded.shape[-1] - 2 * PAD
    rows = dy[:, None] + torch.arange(h, device=padded.device)           # (n, H)
    cols = dx[:, None] + torch.arange(w, device=padded.device)           # (n, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)                 # a flip reads columns backwards
    return padded[idx[:, None, None], 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)  # (n, 1, H, W)


def augment_batch(X: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """`augment_one` for a whole (N, 1, H, W) batch at once, each image with its own choices."""
    padded = nn.functional.pad(X, (PAD, PAD, PAD, PAD))
    return gather_crops(padded, torch.arange(len(X), device=X.device), dy, dx, flip)


def random_choices(n: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random crop offsets (0..2·PAD) and flips for n images."""
    dy = torch.randint(0, 2 * PAD + 1, (n,), generator=generator).to(device)
    dx = torch.randint(0, 2 * PAD + 1, (n,), generator=generator).to(device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(device)
    return dy, dx, flip


@dataclass
class AugmentConfig:
    """Augmentation's effect on generalisation: a small training set, trained long enough to overfit."""

    n_train: int = 2000          # few images: without augmentation the CNN can memorise them
    n_test: int | None = None    # test images (None: all 2,000 of the shipped test split)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.05             # SGD with momentum 0.9, as everywhere in the lab
    seeds: tuple[int, ...] = (0, 1, 2)


def augment_config_for(run_mode: str | None = None) -> AugmentConfig:
    return env.pick(smoke=AugmentConfig(n_train=500, n_test=500, epochs=2, seeds=(0, 1)),
                    full=AugmentConfig(), run_mode=run_mode)


def augmentation_effect(cfg: AugmentConfig, device: torch.device | str = "cpu") -> list[dict]:
    """Train the small CNN with and without the random crops and flips, once per seed (seeds the outer
    loop), the same images, epochs and rate. Per run: test accuracy, accuracy on the training images
    themselves (un-augmented, after training) and their gap in points."""
    # shown in notebook 02_data_loading
    splits = data.load(n_train=cfg.n_train, n_test=cfg.n_test)
    rows = []
    for seed in cfg.seeds:
        for augment in (False, True):
            env.seed_everything(seed)
            model = models.SmallCNN()
            batches = BatchLoader(splits.X_train, splits.y_train, cfg.batch_size, augment=augment, seed=seed)
            fit = train.fit(model, splits, epochs=cfg.epochs, lr=cfg.lr, train_loader=batches, device=device,
                            progress=False)
            _, train_acc = train.evaluate(model, splits.X_train, splits.y_train, device=device)
            rows.append({"seed": seed, "augment": augment, "train_acc": train_acc, "test_acc": fit.final_acc,
                         "gap_pt": 100 * (train_acc - fit.final_acc), "train_time_s": fit.train_time_s})
    return rows


def augmentation_verdicts(rows: list[dict]) -> dict[str, stats.Paired] | None:
    """Augmented minus plain, paired by seed: test accuracy and train − test gap, in points
    (None with fewer than two seeds)."""
    by = {aug: sorted((r for r in rows if r["augment"] == aug), key=lambda r: r["seed"]) for aug in (True, False)}
    if len(by[True]) < 2:
        return None
    return {"test_acc": stats.paired([100 * r["test_acc"] for r in by[True]], [100 * r["test_acc"] for r in by[False]],
                                     "augmented", "plain", "pt"),
            "gap": stats.paired([r["gap_pt"] for r in by[True]], [r["gap_pt"] for r in by[False]],
                                "augmented", "plain", "pt")}


# ============================================================================ pipelines 1 and 2: one sample at a time
# These classes live in an importable module on purpose: DataLoader workers started with 'spawn'
# (Windows, macOS) unpickle the dataset in a fresh Python, which cannot find classes defined in a notebook.

class PngDataset:
    """Naive: decode the PNG, normalise and augment, one image per `__getitem__` call."""
    # shown in notebook 02_data_loading

    def __init__(self, source: Source, augment: bool = True, read_latency_ms: float = 0.0):
        self.pngs, self.y = source.pngs, source.y
        self.mean, self.std = source.mean, source.std
        self.augment, self.read_latency_s = augment, read_latency_ms / 1e3

    def __len__(self) -> int:
        return len(self.pngs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.read_latency_s:
            time.sleep(self.read_latency_s)  # waiting for storage: no CPU used, so workers can overlap it
        img = decode_png(self.pngs[i]).float() / 255      # decode
        img = (img - self.mean) / self.std                # normalise
        if self.augment:                                  # augment
            dy, dx = torch.randint(0, 2 * PAD + 1, (2,)).tolist()
            img = augment_one(img, dy, dx, bool(torch.rand(()) < 0.5))
        return img, self.y[i]


class CachedDataset:
    """Cached: the decoded, normalised tensor is in memory; only the augmentation is per sample."""
    # shown in notebook 02_data_loading

    def __init__(self, source: Source, augment: bool = True):
        self.X, self.y, self.augment = source.X, source.y, augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.X[i]
        if self.augment:
            dy, dx = torch.randint(0, 2 * PAD + 1, (2,)).tolist()
            img = augment_one(img, dy, dx, bool(torch.rand(()) < 0.5))
        return img, self.y[i]


# ============================================================================ pipelines 3 and 4: whole batches

class BatchLoader:
    """Batched: shuffle indices, then take a whole batch, already cropped and flipped, in one gather.

    The cache holds the images padded once up front (work that is the same every epoch is done
    once). With the tensors on the GPU (`on_device`), no byte crosses the PCIe bus during training.
    """
    # shown in notebook 02_data_loading

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, augment: bool = True, seed: int = 0):
        self.padded = nn.functional.pad(X, (PAD, PAD, PAD, PAD))  # (N, 1, 32, 32), once
        self.y, self.batch_size, self.augment = y, batch_size, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.y) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dev = self.padded.device
        order = torch.randperm(len(self.y), generator=self.generator).to(dev)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.augment:
                dy, dx, flip = random_choices(len(idx), self.generator, dev)
            else:  # the centre crop, unflipped: the original images
                dy = dx = torch.full((len(idx),), PAD, device=dev)
                flip = torch.zeros(len(idx), dtype=torch.bool, device=dev)
            yield gather_crops(self.padded, idx, dy, dx, flip), self.y[idx]


def make_loader(setting: LoaderSetting, source: Source, device: torch.device | str = "cpu",
                augment: bool = True, seed: int = 0) -> Iterable:
    """The loader for `setting`: a DataLoader (naive, cached) or a BatchLoader (batched, on_device)."""
    # shown in notebook 02_data_loading
    check_setting(setting)
    dev = torch.device(device)
    if setting.pipeline in ("batched", "on_device"):
        where = dev if setting.pipeline == "on_device" else torch.device("cpu")
        return BatchLoader(source.X.to(where), source.y.to(where), setting.batch_size, augment, seed)
    dataset = (PngDataset(source, augment, setting.read_latency_ms) if setting.pipeline == "naive"
               else CachedDataset(source, augment))
    workers = setting.num_workers
    return DataLoader(
        dataset, batch_size=setting.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed),
        num_workers=workers,
        pin_memory=setting.pin_memory and dev.type == "cuda",  # pinning only helps copies to a GPU
        persistent_workers=setting.persistent_workers and workers > 0,
        prefetch_factor=setting.prefetch_factor if workers > 0 else None,
        multiprocessing_context=setting.mp_context if workers > 0 else None,
    )


def _endless(loader: Iterable) -> Iterator:
    """Batches from epoch after epoch (a new epoch starts a new iterator: workers restart unless persistent)."""
    while True:
        yield from loader


# ============================================================================ measuring

@dataclass
class StepTimes:
    """Per-step seconds spent waiting for data and computing, for one measured window."""

    wait_s: list[float]
    compute_s: list[float]
    batch_size: int
    first_batch_s: float   # from creating the iterator to the first batch: start-up cost
    setting: dict = field(default_factory=dict)
    samples: list[int] = field(default_factory=list)  # images in each timed batch (the last of an epoch is short)

    @property
    def samples_per_s(self) -> float:
        """Images actually loaded and trained on per second (counted, not the batch-size setting)."""
        images = sum(self.samples) if self.samples else self.batch_size * len(self.wait_s)
        return images / (sum(self.wait_s) + sum(self.compute_s))

    @property
    def wait_ms(self) -> float:
        return 1e3 * statistics.mean(self.wait_s)

    @property
    def compute_ms(self) -> float:
        return 1e3 * statistics.mean(self.compute_s)

    @property
    def wait_pct(self) -> float:
        """The share of step time spent waiting for data, in percent."""
        return 100 * sum(self.wait_s) / (sum(self.wait_s) + sum(self.compute_s))


def measure(setting: LoaderSetting, source: Source, model: nn.Module | None, *, steps: int = 20,
            warmup_steps: int = 4, lr: float = 0.05, device: torch.device | str = "cpu",
            seed: int = 0) -> StepTimes:
    """Train `model` for warm-up + `steps` steps from a fresh loader, timing data wait and compute apart.

    model=None measures the loader alone (compute is then only the copy to the device).
    """
    # shown in notebook 02_data_loading
    if steps < 1 or warmup_steps < 0:
        raise LabkitError(f"steps={steps} must be at least 1 and warmup_steps={warmup_steps} at least 0.")
    dev = torch.device(device)
    loader = make_loader(setting, source, dev, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if model is not None else None
    waits, computes, samples = [], [], []
    start = time.perf_counter()
    batches = _endless(loader)
    first_batch_s = None
    try:
        for step in range(warmup_steps + steps):
            # --- wait for data: the only thing timed here is next() ---
            t0 = time.perf_counter()
            xb, yb = next(batches)
            t1 = time.perf_counter()
            first_batch_s = t1 - start if first_batch_s is None else first_batch_s
            # --- compute: copy to the device, forward, backward, step; synchronised before the clock ---
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            if model is not None:
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            env.synchronize(dev)
            t2 = time.perf_counter()
            if step >= warmup_steps:
                waits.append(t1 - t0)
                computes.append(t2 - t1)
                samples.append(len(yb))
    finally:
        batches.close()  # ends the epoch's iterator: its worker processes shut down now
    return StepTimes(waits, computes, setting.batch_size, first_batch_s, asdict(setting), samples=samples)


def first_batch_latency(setting: LoaderSetting, source: Source, epochs: int = 3) -> list[float]:
    """Seconds from starting each epoch's iterator to its first batch (worker start-up shows here)."""
    loader = make_loader(setting, source)
    latencies = []
    for _ in range(epochs):
        start = time.perf_counter()
        iterator = iter(loader)
        next(iterator)
        latencies.append(time.perf_counter() - start)
        for _ in iterator:  # finish the epoch untimed (use a small source: a few batches)
            pass
    return latencies


def compare(settings: dict[str, LoaderSetting], source: Source, cfg: LoadingConfig,
            device: torch.device | str = "cpu", loader_only: bool = True) -> dict[str, dict]:
    """Measure every setting in `repeats` interleaved windows (order rotated); the median window of each.

    Returns, per name, the median window's StepTimes ('train'), all windows' samples/s, and with
    loader_only the loader's own samples/s with no model ('loader_samples_per_s').
    """
    dev = torch.device(device)
    model = seeded_model(cfg.model, dev, cfg.seed)
    names = list(settings)
    windows: dict[str, list[StepTimes]] = {name: [] for name in names}
    loader_rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(cfg.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            setting = replace(settings[name], batch_size=cfg.batch_size)
            windows[name].append(measure(setting, source, model, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                                         lr=cfg.lr, device=dev, seed=cfg.seed + r))
            if loader_only:
                alone = measure(setting, source, None, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                                device=dev, seed=cfg.seed + r)
                loader_rates[name].append(alone.samples_per_s)
    out = {}
    for name in names:
        ranked = sorted(windows[name], key=lambda w: w.samples_per_s)
        out[name] = {"train": ranked[len(ranked) // 2], "samples_per_s": [w.samples_per_s for w in windows[name]],
                     "loader_samples_per_s": statistics.median(loader_rates[name]) if loader_only else None}
    return out


# ============================================================================ checks: did the technique take effect?

def check_pipelines_agree(source: Source, device: torch.device | str = "cpu", n: int = 16) -> None:
    """Raise unless every pipeline yields the same pixels: decoded PNG == cached tensor, and the
    batched augmentation == the per-sample one for the same random choices. Faster must not mean different."""
    idx = torch.arange(min(n, len(source)))
    decoded = torch.stack([PngDataset(source, augment=False)[int(i)][0] for i in idx])
    if not torch.allclose(decoded, source.X[idx], atol=1e-6):
        raise LabkitError("decoded PNGs differ from the cached tensor: the cache is stale, rebuild it with make_source().")
    dy, dx, flip = random_choices(len(idx), torch.Generator().manual_seed(0))
    one_by_one = torch.stack([augment_one(source.X[i], int(a), int(b), bool(f)) for i, a, b, f in zip(idx, dy, dx, flip)])
    dev = torch.device(device)
    batched = augment_batch(source.X[idx].to(dev), dy.to(dev), dx.to(dev), flip.to(dev)).cpu()
    if not torch.equal(one_by_one, batched):
        raise LabkitError("augment_batch does not match augment_one: the batched pipeline would train on other images.")


def check_on_device(loader: Iterable, device: torch.device | str) -> None:
    """Raise unless the loader's batches already live on `device` (the on_device pipeline's promise)."""
    xb, _ = next(iter(loader))
    if xb.device.type != torch.device(device).type:
        raise LabkitError(f"batches are on {xb.device}, not on {device}: build the loader with pipeline='on_device'.")


# ============================================================================ headline

def headline(mode: str | None = None) -> BenchReport:
    """Training samples/s of the small CNN fed by each pipeline; batched_vs_naive and best_vs_naive."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    dev = env.device()
    source = load_source(cfg.n_images)
    check_pipelines_agree(source, dev)
    check_on_device(make_loader(HEADLINE_SETTINGS["on_device"], source, dev), dev)
    settings = {name: replace(s, pin_memory=dev.type == "cuda") for name, s in HEADLINE_SETTINGS.items()}
    measured = compare(settings, source, cfg, dev)
    card = ResultCard(title=f"Feeding the {cfg.model} on {dev.type}: training throughput per pipeline", baseline="naive")
    for name, m in measured.items():
        w = m["train"]
        card.add({"variant": name, "images_per_s": w.samples_per_s, "wait_ms": w.wait_ms,
                  "compute_ms": w.compute_ms, "data_wait_pct": w.wait_pct,
                  "loader_alone_per_s": m["loader_samples_per_s"],
                  # how much the windows of one configuration disagree: a busy machine shows here
                  "window_spread_pct": 100 * (max(m["samples_per_s"]) - min(m["samples_per_s"])) / w.samples_per_s})
    rates = {name: card.value(name, "images_per_s") for name in measured}
    numbers: dict[str, float | str | None] = {f"{name}_samples_per_s": rate for name, rate in rates.items()}
    numbers["batched_vs_naive"] = rates["batched"] / rates["naive"]
    numbers["best_vs_naive"] = max(rates.values()) / rates["naive"]
    return BenchReport(name="dataloading", mode=run_mode, card=card, headline=numbers,
                       config={**asdict(cfg), "device": dev.type, "settings": {k: asdict(v) for k, v in settings.items()}})
