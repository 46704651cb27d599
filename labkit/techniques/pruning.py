"""Pruning: remove weights (unstructured masks) or whole channels (structured), and share weights.

What it does (notebook 07):
- magnitude pruning with `torch.nn.utils.prune`, layer by layer or globally, and a plain
  `magnitude_mask` that shows what those calls compute;
- a per-layer sensitivity scan, and iterative prune + fine-tune;
- structured channel pruning that builds a smaller dense SmallCNN (channels really removed);
- storage of dense, masked and sparse (bitmap + values) weights, and k-means weight sharing
  (Deep Compression, Han et al. 2016).

Headline (`labkit bench pruning`), all measured in one run on the shared SmallCNN:
- sparsity: fraction of zero weights in the prunable layers after iterative global pruning;
- accuracy_drop_pt: dense test accuracy minus the pruned, fine-tuned model's, in points;
- structured_speedup: dense / channel-pruned latency at batch 64, fixed thread count;
- size_ratio: dense state_dict bytes / sparse (bitmap + non-zero values) bytes on disk.
"""

from __future__ import annotations

import copy
import io
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune

from labkit import bench, data, env, models, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard


@dataclass
class PruneConfig:
    width: int = 16                              # SmallCNN conv width (conv1 = width, conv2 = 2 × width)
    hidden: int = 64                             # SmallCNN hidden units
    epochs: int = 8                              # training epochs of the dense baseline
    lr: float = 0.05                             # SGD + momentum 0.9 learning rate (baseline)
    finetune_lr: float = 0.01                    # learning rate while fine-tuning after pruning
    schedule: tuple[float, ...] = (0.5, 0.75, 0.9)  # iterative global sparsity steps; the last is the target
    finetune_epochs: int = 1                     # fine-tuning epochs after each pruning step
    channel_keep: float = 0.5                    # structured: fraction of conv channels kept
    structured_epochs: int = 3                   # fine-tuning epochs of the channel-pruned model
    clusters: int = 16                           # weight sharing: k-means centroids per layer (16 = 4-bit codes)
    threads: int = 2                             # CPU threads for every latency measurement
    min_run_time: float = 0.5                    # seconds of timing per latency measurement
    seed: int = 0


def config_for(run_mode: str) -> PruneConfig:
    return env.pick(smoke=PruneConfig(epochs=2, schedule=(0.6, 0.9), structured_epochs=1, min_run_time=0.1),
                    full=PruneConfig(), run_mode=run_mode)


# ---------------------------------------------------------------- the technique: masks
def check_sparsity(sparsity: float) -> None:
    if not 0 <= sparsity < 1:
        raise LabkitError(f"sparsity={sparsity!r} must be in [0, 1): the fraction of weights set to zero, e.g. 0.9.")


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """1 for the weights to keep, 0 for the `sparsity` fraction with the smallest |w| (what l1_unstructured does)."""
    # shown in notebook 07_pruning
    check_sparsity(sparsity)
    n_prune = round(sparsity * weight.numel())
    mask = torch.ones_like(weight)
    if n_prune == 0:
        return mask
    smallest = torch.topk(weight.abs().flatten(), n_prune, largest=False).indices
    mask.view(-1)[smallest] = 0
    return mask


def prunable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, layer) pairs whose weights we prune: every Conv2d and Linear."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_layerwise(model: nn.Module, sparsity: float) -> nn.Module:
    """Prune every layer to the same sparsity (masks stay attached: `weight = weight_orig * weight_mask`)."""
    # shown in notebook 07_pruning
    check_sparsity(sparsity)
    for _, layer in prunable(model):
        prune.l1_unstructured(layer, "weight", amount=sparsity)
    return model


def prune_global(model: nn.Module, sparsity: float) -> nn.Module:
    """Prune the smallest weights over all layers together: big layers give up more, small ones less."""
    # shown in notebook 07_pruning
    check_sparsity(sparsity)
    params = [(layer, "weight") for _, layer in prunable(model)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the masks into the weights (`prune.remove`): zeros stay, the mask buffers go."""
    for _, layer in prunable(model):
        if prune.is_pruned(layer) and hasattr(layer, "weight_mask"):
            prune.remove(layer, "weight")
    return model


def sparsity_of(model: nn.Module) -> float:
    """Fraction of exactly-zero weights in the prunable layers."""
    zeros = total = 0
    for _, layer in prunable(model):
        zeros += int((layer.weight == 0).sum())
        total += layer.weight.numel()
    return zeros / total


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    return {name: float((layer.weight == 0).float().mean()) for name, layer in prunable(model)}


def check_sparse(model: nn.Module, at_least: float) -> None:
    """Raise when the model is not at least `at_least` sparse: the pruning did not take effect."""
    s = sparsity_of(model)
    if s < at_least - 1e-3:
        raise LabkitError(f"the model is only {100 * s:.1f} % sparse, expected ≥ {100 * at_least:.1f} %: "
                          "pruning did not take effect (were the masks removed before pruning?).")


def accuracy(model: nn.Module, splits: data.Splits) -> float:
    return train.evaluate(model, splits.X_test, splits.y_test)[1]


def sensitivity_scan(model: nn.Module, splits: data.Splits, amounts: list[float]) -> pd.DataFrame:
    """Test accuracy when ONE layer at a time is pruned to each amount (no fine-tuning): rows layers, columns amounts."""
    rows = {}
    for name, _ in prunable(model):
        accs = []
        for amount in amounts:
            trial = copy.deepcopy(model)
            layer = dict(trial.named_modules())[name]
            prune.l1_unstructured(layer, "weight", amount=amount)
            accs.append(accuracy(trial, splits))
        rows[name] = accs
    return pd.DataFrame.from_dict(rows, orient="index", columns=amounts)


def accuracy_at(model: nn.Module, splits: data.Splits, sparsity: float) -> dict[str, float]:
    """Test accuracy of copies pruned layer-wise and globally to `sparsity` (no fine-tuning; `model` untouched)."""
    return {"layer-wise": accuracy(prune_layerwise(copy.deepcopy(model), sparsity), splits),
            "global": accuracy(prune_global(copy.deepcopy(model), sparsity), splits)}


def sparsity_curve(model: nn.Module, splits: data.Splits, amounts: list[float]) -> pd.DataFrame:
    """Accuracy against sparsity, layer-wise and global, without fine-tuning."""
    return pd.DataFrame([{"sparsity": amount, **accuracy_at(model, splits, amount)} for amount in amounts])


def iterative_prune(model: nn.Module, splits: data.Splits, cfg: PruneConfig, progress: bool = False) -> pd.DataFrame:
    """Prune globally in steps (cfg.schedule), fine-tuning after each; masks are made permanent at the end."""
    # shown in notebook 07_pruning
    rows = []
    for step, target in enumerate(cfg.schedule, 1):
        make_permanent(model)          # fold the previous mask so global pruning sees the zeros as smallest
        prune_global(model, target)    # the amount counts all weights, so the zeros of earlier steps stay zero
        before = accuracy(model, splits)
        train.fit(model, splits, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, device="cpu",
                  seed=cfg.seed + step, progress=progress)  # the masks keep pruned weights at zero
        rows.append({"step": step, "sparsity": sparsity_of(model), "acc_after_prune": before,
                     "acc_after_finetune": accuracy(model, splits)})
    make_permanent(model)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- structured: remove channels
def _top_channels(weight: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the `keep` output channels with the largest L1 norm, in their original order."""
    norms = weight.abs().flatten(1).sum(1)
    return torch.sort(torch.topk(norms, keep).indices).values


def prune_channels(model: models.SmallCNN, keep: float) -> models.SmallCNN:
    """A smaller dense SmallCNN keeping the `keep` fraction of conv channels with the largest L1 norms."""
    # shown in notebook 07_pruning
    if not 0 < keep <= 1:
        raise LabkitError(f"keep={keep!r} must be in (0, 1]: the fraction of channels to keep, e.g. 0.5.")
    conv1, conv2 = model.features[0], model.features[3]
    fc1, fc2 = model.classifier[1], model.classifier[3]
    width = max(1, round(keep * conv1.out_channels))
    small = models.SmallCNN(width=width, hidden=fc1.out_features, num_classes=fc2.out_features)
    keep1 = _top_channels(conv1.weight, width)
    keep2 = _top_channels(conv2.weight[:, keep1], 2 * width)
    # fc1 reads the flattened (channel, 7, 7) map: keep the 49 columns of each kept channel
    cols = (keep2[:, None] * 49 + torch.arange(49)).flatten()
    with torch.no_grad():
        s1, s2, sf1, sf2 = small.features[0], small.features[3], small.classifier[1], small.classifier[3]
        s1.weight.copy_(conv1.weight[keep1]); s1.bias.copy_(conv1.bias[keep1])
        s2.weight.copy_(conv2.weight[keep2][:, keep1]); s2.bias.copy_(conv2.bias[keep2])
        sf1.weight.copy_(fc1.weight[:, cols]); sf1.bias.copy_(fc1.bias)
        sf2.weight.copy_(fc2.weight); sf2.bias.copy_(fc2.bias)
    check_channels_removed(small, model)
    return small


def check_channels_removed(small: nn.Module, big: nn.Module) -> None:
    """Raise unless `small` really has fewer conv channels and parameters than `big`."""
    c_small = [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)]
    c_big = [m.out_channels for m in big.modules() if isinstance(m, nn.Conv2d)]
    if sum(c_small) >= sum(c_big) or models.count_params(small) >= models.count_params(big):
        raise LabkitError(f"channels were not removed: conv channels {c_small} vs {c_big}.")


# ---------------------------------------------------------------- storage and weight sharing
def _nbytes(obj) -> int:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer().nbytes


def dense_bytes(model: nn.Module) -> int:
    """Bytes of the saved state_dict (every weight stored, zeros included)."""
    return _nbytes(model.state_dict())


def sparse_state(model: nn.Module) -> dict:
    """Weights of prunable layers as a 1-bit-per-weight bitmap plus the non-zero values (fp32)."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("weight") and value.dim() > 1:
            nonzero = value != 0
            bitmap = torch.from_numpy(np.packbits(nonzero.flatten().numpy()))
            state[key] = {"shape": tuple(value.shape), "bitmap": bitmap, "values": value[nonzero].clone()}
        else:
            state[key] = value.clone()
    return state


def sparse_bytes(model: nn.Module) -> int:
    return _nbytes(sparse_state(model))


def load_sparse(state: dict) -> dict:
    """The dense state_dict back from `sparse_state` (to check the storage loses nothing)."""
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            n = int(np.prod(value["shape"]))
            mask = torch.from_numpy(np.unpackbits(value["bitmap"].numpy())[:n].astype(bool))
            dense = torch.zeros(n)
            dense[mask] = value["values"]
            out[key] = dense.view(value["shape"])
        else:
            out[key] = value
    return out


def kmeans_1d(values: torch.Tensor, k: int, iters: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster numbers into `k` centroids (linear initialisation, as Deep Compression); returns (centroids, codes)."""
    # shown in notebook 07_pruning
    if not 1 <= k <= 256:
        raise LabkitError(f"clusters={k!r} must be between 1 and 256 (codes are stored in one byte).")
    centroids = torch.linspace(float(values.min()), float(values.max()), k)
    for _ in range(iters):
        codes = (values[:, None] - centroids[None, :]).abs().argmin(1)   # assign each weight to its nearest centroid
        for j in range(k):                                               # move each centroid to its members' mean
            members = values[codes == j]
            if len(members):
                centroids[j] = members.mean()
    codes = (values[:, None] - centroids[None, :]).abs().argmin(1)
    return centroids, codes


def share_weights(model: nn.Module, k: int) -> tuple[nn.Module, dict]:
    """A copy whose non-zero weights in each prunable layer take one of `k` shared values; plus the
    storage (bitmap + 4- or 8-bit codes + codebook) that a pruned, shared model needs."""
    shared = copy.deepcopy(model)
    storage = {}
    for name, layer in prunable(shared):
        w = layer.weight.data
        nonzero = w != 0
        centroids, codes = kmeans_1d(w[nonzero], k)
        w[nonzero] = centroids[codes]
        packed = codes.to(torch.uint8)
        if k <= 16:  # two 4-bit codes per byte
            packed = torch.cat([packed, packed.new_zeros(len(packed) % 2)])
            packed = packed[0::2] << 4 | packed[1::2]
        storage[name] = {"bitmap": torch.from_numpy(np.packbits(nonzero.flatten().numpy())),
                         "codes": packed, "codebook": centroids.clone(), "bias": layer.bias.data.clone()}
    return shared, storage


def distinct_values(model: nn.Module) -> dict[str, int]:
    """Distinct non-zero weight values per layer (k after weight sharing)."""
    return {name: int(torch.unique(layer.weight[layer.weight != 0]).numel()) for name, layer in prunable(model)}


# ---------------------------------------------------------------- measurements
def latency_ms(model: nn.Module, batch: int, cfg: PruneConfig) -> float:
    """Median forward latency (ms) at `batch`, cfg.threads threads, no gradients."""
    x = torch.randn(batch, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        return bench.time_fn(lambda: model(x), num_threads=cfg.threads, min_run_time=cfg.min_run_time).median_ms


def train_step_ms(model: nn.Module, cfg: PruneConfig, batch: int = 128) -> float:
    """Median time (ms) of one SGD training step (forward, backward, update) at `batch`."""
    return bench.time_train_step(model, batch=batch, lr=1e-4, seed=cfg.seed, num_threads=cfg.threads,
                                 min_run_time=cfg.min_run_time).median_ms


def compare_train_steps(variants: dict[str, nn.Module], cfg: PruneConfig, rounds: int = 3) -> pd.Series:
    """Median ms per training step of each model, measured in interleaved rounds (fair on a busy machine)."""
    ms = bench.time_train_steps(variants, lr=1e-4, seed=cfg.seed, num_threads=cfg.threads,
                                min_run_time=cfg.min_run_time, rounds=rounds)
    return pd.Series(ms, name="ms per training step")


def nonzero_params(model: nn.Module) -> int:
    return sum(int((p != 0).sum()) for p in model.parameters())


def train_baseline(splits: data.Splits, cfg: PruneConfig, progress: bool = False) -> nn.Module:
    env.seed_everything(cfg.seed)
    model = models.SmallCNN(width=cfg.width, hidden=cfg.hidden)
    train.fit(model, splits, epochs=cfg.epochs, lr=cfg.lr, device="cpu", seed=cfg.seed, progress=progress)
    return model.eval()


def measure_row(variant: str, model: nn.Module, splits: data.Splits, cfg: PruneConfig, size_bytes: int) -> dict:
    """One card row: accuracy, latency at batch 1 and 64, size on disk, non-zero parameters."""
    return {"variant": variant, "accuracy": accuracy(model, splits),
            "latency_ms": latency_ms(model, 64, cfg), "latency_b1_ms": latency_ms(model, 1, cfg),
            "size_mb": size_bytes / 1e6, "params": nonzero_params(model)}


def compare(splits: data.Splits, cfg: PruneConfig, dense: nn.Module | None = None,
            progress: bool = False) -> tuple[ResultCard, dict]:
    """Dense, iteratively pruned (global, unstructured), channel-pruned and weight-shared models, side by side."""
    dense = dense if dense is not None else train_baseline(splits, cfg, progress)
    # unstructured: iterative global magnitude pruning + fine-tuning
    sparse = copy.deepcopy(dense)
    steps = iterative_prune(sparse, splits, cfg, progress)
    check_sparse(sparse, cfg.schedule[-1])
    # structured: remove channels for real, then fine-tune the smaller dense model
    small = prune_channels(dense, cfg.channel_keep)
    acc_small_before = accuracy(small, splits)
    train.fit(small, splits, epochs=cfg.structured_epochs, lr=cfg.finetune_lr, device="cpu", seed=cfg.seed,
              progress=progress)
    # weight sharing on the pruned model (Deep Compression: prune, then share)
    shared, storage = share_weights(sparse, cfg.clusters)

    card = ResultCard(title="Pruning the SmallCNN", baseline="dense")
    card.add(measure_row("dense", dense, splits, cfg, dense_bytes(dense)))
    card.add(measure_row(f"unstructured {100 * cfg.schedule[-1]:.0f} % (sparse storage)", sparse, splits, cfg,
                         sparse_bytes(sparse)))
    card.add(measure_row(f"channels kept {100 * cfg.channel_keep:.0f} %", small, splits, cfg, dense_bytes(small)))
    card.add(measure_row(f"unstructured + shared k={cfg.clusters}", shared, splits, cfg, _nbytes(storage)))
    extra = {"iterative": steps, "sparsity": sparsity_of(sparse), "structured_acc_before_finetune": acc_small_before,
             "models": {"dense": dense, "sparse": sparse, "small": small, "shared": shared}}
    return card, extra


def bench_report(card: ResultCard, extra: dict, cfg: PruneConfig, run_mode: str) -> BenchReport:
    """The report `labkit bench pruning` prints, from what `compare` returned."""
    names = card.variants
    return BenchReport(
        name="pruning", mode=run_mode, card=card, config=asdict(cfg),
        headline={"sparsity": extra["sparsity"],
                  "accuracy_drop_pt": -card.delta_pt(names[1]),
                  "structured_speedup": card.speedup(names[2], "latency_ms"),
                  "size_ratio": card.speedup(names[1], "size_mb")},
    )


def headline(mode: str | None = None) -> BenchReport:
    """Train the dense SmallCNN, prune it both ways, and return the report `labkit bench pruning` prints."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    splits = data.load_for_mode(run_mode)
    card, extra = compare(splits, cfg)
    return bench_report(card, extra, cfg, run_mode)
