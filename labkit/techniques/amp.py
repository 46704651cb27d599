"""Mixed precision: autocast to fp16 or bf16, and loss scaling for fp16 (notebook 03_mixed_precision).

`torch.autocast` runs matmuls and convolutions in a 16-bit type while keeping the weights, the
optimizer and precision-sensitive ops (softmax, losses, reductions) in fp32. fp16 has a narrow
range, so small gradients underflow to zero: `torch.amp.GradScaler` multiplies the loss by a large
factor before backward and divides the gradients by it before the step. bf16 has fp32's range
and needs no scaler, but keeps only 8 bits of precision. The technique's lines live in the step every
loop calls, `labkit.train.train_step`, switched by `labkit.train.fit(precision="fp16" | "bf16" | "auto")`.

Headline (`labkit bench amp`): the SmallCNN trained in fp32 and with autocast to the device's
usual 16-bit type (fp16 + GradScaler on a CUDA GPU, bf16 elsewhere), same data, seeds and epochs:
`speedup` = fp32 train time / mixed-precision train time (the median over seeds), `memory_ratio` =
memory autograd keeps for backward in one training step (batch 512), mixed / fp32 (on a GPU the card
also shows the allocator's peak), `accuracy_delta_pt` = mixed − fp32 test accuracy
(mean over seeds, points), `dtype`, `device`. On a CPU without bf16 units (`env.cpu_has_bf16_units()`)
bf16 is emulated and slower: the speedup is below 1 there, and that is the lesson, not a bug.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn

from labkit import bench, data, env, models, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class AmpConfig:
    model: str = "small_cnn"     # a shared model (models.build name)
    n_train: int = 4000          # training images (bf16 on a CPU without bf16 units is ≈ 2-3× slower)
    n_test: int = 2000           # test images
    epochs: int = 4              # epochs per run
    batch_size: int = 128
    lr: float = 0.05             # SGD with momentum 0.9
    seeds: tuple[int, ...] = (0, 1, 2)  # one run per seed and precision; accuracy claims need several
    mem_batch: int = 512         # batch of the single training step whose memory is measured


def config_for(run_mode: str | None = None) -> AmpConfig:
    smoke = AmpConfig(n_train=600, n_test=500, epochs=1, seeds=(0,), mem_batch=128)
    return env.pick(smoke=smoke, full=AmpConfig(), run_mode=run_mode)


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[dtype]


# ---------------------------------------------------------------- numerics: range and precision

def precision_table() -> pd.DataFrame:
    """Range and precision of fp32, fp16 and bf16, from torch.finfo."""
    rows = []
    for name, dtype in DTYPES.items():
        info = torch.finfo(dtype)
        mantissa = round(-torch.log2(torch.tensor(info.eps, dtype=torch.float64)).item())
        rows.append({"dtype": name, "bits": info.bits, "mantissa_bits": mantissa,
                     "exponent_bits": info.bits - 1 - mantissa, "max": info.max, "smallest_normal": info.tiny,
                     "smallest_subnormal": info.smallest_normal * info.eps, "eps": info.eps,
                     "decimal_digits": info.resolution})
    return pd.DataFrame(rows).set_index("dtype")


def activation_gradients(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|gradient| of the loss with respect to every layer's output, in fp32, for one batch (flattened).

    These are the numbers fp16 backward would have to hold; weight gradients are computed from them.
    """
    grads: list[torch.Tensor] = []
    handles = []

    def keep(_module, _inputs, output):
        if output.requires_grad:
            output.register_hook(lambda g: grads.append(g.detach().abs().flatten().float()))

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d)):
            handles.append(module.register_forward_hook(keep))
    try:
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(X), y).backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    g = torch.cat(grads)
    return g[g > 0]  # exact zeros (e.g. behind a ReLU) are zero in any format


def fp16_fate(grads: torch.Tensor, scale: float = 1.0) -> dict:
    """What happens to fp32 values multiplied by `scale` and stored in fp16: the fraction that underflows
    to zero, lands among the subnormals (few bits left), stays normal, or overflows to infinity."""
    if not scale > 0:
        raise LabkitError(f"scale={scale!r} must be greater than 0 (GradScaler starts at 2**16 = 65536).")
    if grads.numel() == 0:
        raise LabkitError("no gradient values given: pass the output of activation_gradients().")
    scaled = grads.double() * scale
    half = scaled.to(torch.float16)
    zero = (half == 0) & (scaled != 0)
    inf = torch.isinf(half)
    sub = (half.abs() < torch.finfo(torch.float16).tiny) & ~zero & (half != 0)
    n = grads.numel()
    kept = ~zero & ~inf & (scaled != 0)
    rel_err = ((half[kept].double() - scaled[kept]).abs() / scaled[kept]).median().item() if kept.any() else float("nan")
    return {"scale": scale, "underflow": zero.sum().item() / n, "subnormal": sub.sum().item() / n,
            "normal": (~zero & ~inf & ~sub).sum().item() / n, "overflow": inf.sum().item() / n,
            "median_rel_error": rel_err}


def loss_scale(log2_scale: int) -> float:
    """The loss scale 2**log2_scale, for a whole-number exponent between -60 and 60 (the scale explorer's range)."""
    if not isinstance(log2_scale, int) or not -60 <= log2_scale <= 60:
        raise LabkitError(f"log2 scale {log2_scale!r} must be a whole number between -60 and 60.")
    return 2.0 ** log2_scale


def fp16_backward_zeros(model: nn.Module, X: torch.Tensor, y: torch.Tensor, dev: torch.device | str,
                        scale: float) -> dict:
    """A real fp16 autocast backward (no optimizer step) with the loss multiplied by `scale`:
    the fraction of weight-gradient entries that came out zero although fp32 gives them a value,
    and the median relative error of the rest after dividing by `scale` (what GradScaler does)."""
    # Loss scaling by hand, on purpose: this function shows what GradScaler does inside train.train_step.
    dev = torch.device(dev)
    model = model.to(dev)
    X, y = X.to(dev), y.to(dev)
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(X), y).backward()
    ref = torch.cat([p.grad.flatten() for p in model.parameters()]).clone()
    model.zero_grad(set_to_none=True)
    with torch.autocast(device_type=dev.type, dtype=torch.float16):
        loss = nn.functional.cross_entropy(model(X), y)
    (loss * scale).backward()
    got = torch.cat([p.grad.flatten() for p in model.parameters()]) / scale
    model.zero_grad(set_to_none=True)
    nonzero = ref != 0
    lost = (got == 0) & nonzero
    ok = nonzero & (got != 0) & torch.isfinite(got)
    rel = ((got[ok] - ref[ok]).abs() / ref[ok].abs()).median().item() if ok.any() else float("nan")
    return {"scale": scale, "zeroed": lost.sum().item() / max(nonzero.sum().item(), 1),
            "non_finite": (~torch.isfinite(got)).sum().item() / got.numel(), "median_rel_error": rel}


def matmul_speed(dev: torch.device | str, n: int, min_run_time: float = 0.3) -> dict[str, float]:
    """GFLOP/s of an n×n matmul in fp32 and in each 16-bit type the device computes quickly enough to try
    (fp16 only on a GPU: CPUs emulate it very slowly): the raw speed the hardware offers each format."""
    dev = torch.device(dev)
    names = ("fp32", "bf16")
    if dev.type == "cuda":
        names = ("fp32", "bf16", "fp16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
    return {name: bench.matmul_gflops(n, device=dev, dtype=DTYPES[name], min_run_time=min_run_time)["gflops"]
            for name in names}


# ---------------------------------------------------------------- the technique: autocast (+ scaler)

def check_autocast(model: nn.Module, dev: torch.device | str, dtype: torch.dtype) -> torch.dtype:
    """Raise unless a forward pass under autocast really computes in `dtype`; returns the logits' dtype."""
    # shown in notebook 03_mixed_precision
    dev = torch.device(dev)
    x = torch.randn(2, 1, 28, 28, device=dev)
    with torch.no_grad(), torch.autocast(device_type=dev.type, dtype=dtype):
        logits = model.to(dev)(x)
    if logits.dtype != dtype:
        raise LabkitError(f"autocast to {dtype} did not take effect: the logits are {logits.dtype}.")
    if next(model.parameters()).dtype != torch.float32:
        raise LabkitError("the weights must stay fp32 under mixed precision (autocast casts on the fly).")
    return logits.dtype


def saved_for_backward_mb(model_name: str, batch: int, dev: torch.device | str, dtype: torch.dtype | None) -> float:
    """MB of tensors autograd keeps for backward in one training step (activations, and the 16-bit copies of
    weights autocast makes): the memory that grows with the batch and that mixed precision shrinks.

    Counted exactly with saved-tensor hooks (each storage once), so it is the same on every device.
    """
    dev = torch.device(dev)
    env.seed_everything(0)
    model = models.build(model_name).to(dev)
    xb = torch.randn(batch, 1, 28, 28, device=dev)
    yb = torch.randint(0, 10, (batch,), device=dev)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(device_type=dev.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    return sum(storages.values()) / 1e6


def step_peak_memory_mb(model_name: str, batch: int, dev: torch.device | str, dtype: torch.dtype | None) -> float | None:
    """Peak memory one training step adds on a GPU (the allocator's peak), in MB; None on a CPU, where the
    process's resident memory is reused between steps and says little about one step."""
    dev = torch.device(dev)
    if dev.type != "cuda":
        return None
    env.seed_everything(0)
    model = models.build(model_name).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dtype = dtype or torch.float32
    scaler = train.make_scaler(dtype, dev)
    xb = torch.randn(batch, 1, 28, 28, device=dev)
    yb = torch.randint(0, 10, (batch,), device=dev)

    def step() -> None:
        train.train_step(model, opt, xb, yb, dtype=dtype, scaler=scaler)

    step()  # warm-up: optimizer state and kernels exist before measuring
    return bench.peak_memory_mb(step, dev)


def train_variant(cfg: AmpConfig, splits: data.Splits, dtype: torch.dtype | None, seed: int = 0,
                  dev: torch.device | str | None = None, callbacks=(), progress: bool = False):
    """Train `cfg.model` once in fp32 (dtype None) or with autocast to `dtype`; returns (model, FitResult)."""
    dev = env.device(dev)
    env.seed_everything(seed)
    model = models.build(cfg.model)
    if dtype is not None:
        check_autocast(model, dev, dtype)
    fit = train.fit(model, splits, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                    precision=dtype_name(dtype or torch.float32), seed=seed, device=dev, callbacks=callbacks,
                    progress=progress)
    return model, fit


def compare_precisions(cfg: AmpConfig, splits: data.Splits, dev: torch.device | str | None = None,
                       dtypes: tuple[torch.dtype, ...] | None = None) -> tuple[ResultCard, dict]:
    """fp32 against each 16-bit type, one run per seed, precisions interleaved within each seed.

    Card rows: median train time and images/s, mean accuracy (and its std over seeds), the memory
    saved for backward in one step and, on a GPU, the allocator's peak for one step.
    Also returns per-seed accuracies {variant: [acc, ...]} for the claim checks.
    """
    dev = env.device(dev)
    if dtypes is None:
        dtypes = (torch.bfloat16,)
        if dev.type == "cuda":  # bf16 needs Ampere or later; fp16 tensor cores exist from Volta on
            dtypes = (torch.float16, torch.bfloat16) if torch.cuda.is_bf16_supported() else (torch.float16,)
    variants = {"fp32": None} | {f"{dtype_name(d)} autocast" + (" + GradScaler" if d == torch.float16 else ""): d
                                 for d in dtypes}
    times: dict[str, list[float]] = {v: [] for v in variants}
    accs: dict[str, list[float]] = {v: [] for v in variants}
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for seed in cfg.seeds:
        for name, dtype in variants.items():
            _, fit = train_variant(cfg, splits, dtype, seed=seed, dev=dev)
            times[name].append(fit.train_time_s)
            accs[name].append(fit.final_acc)
            rates[name].append(fit.images_per_s)
    card = ResultCard(title=f"{cfg.model}, {len(splits.y_train)} images × {cfg.epochs} epochs, "
                            f"{len(cfg.seeds)} seed(s), {dev.type}", baseline="fp32")
    for name, dtype in variants.items():
        card.add({"variant": name, "accuracy": statistics.mean(accs[name]),
                  "train_time_s": statistics.median(times[name]), "images_per_s": statistics.median(rates[name]),
                  "saved_for_backward_mb": saved_for_backward_mb(cfg.model, cfg.mem_batch, dev, dtype),
                  "peak_mem_mb": step_peak_memory_mb(cfg.model, cfg.mem_batch, dev, dtype),
                  "acc_std_pt": 100 * statistics.stdev(accs[name]) if len(accs[name]) > 1 else None})
    return card, accs


def headline(mode: str | None = None) -> BenchReport:
    """fp32 against mixed precision on this device: speed, peak memory and accuracy."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    dev = env.device()
    splits = data.load(n_train=cfg.n_train, n_test=cfg.n_test, device=dev)
    card, accs = compare_precisions(cfg, splits, dev)
    dtype = train.mixed_dtype(dev)
    main = next(v for v in card.variants if v.startswith(dtype_name(dtype)))
    memory_ratio = card.ratio(main, "saved_for_backward_mb")
    return BenchReport(
        name="amp", mode=run_mode, card=card,
        config=asdict(cfg) | {"cpu_bf16_units": env.cpu_has_bf16_units(), "accuracies": accs},
        headline={"speedup": card.speedup(main), "memory_ratio": memory_ratio,
                  "accuracy_delta_pt": card.delta_pt(main), "dtype": dtype_name(dtype), "device": dev.type},
    )
