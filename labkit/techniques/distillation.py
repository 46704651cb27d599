"""Knowledge distillation: a small student learns from a larger teacher's softened outputs.

The teacher is a CNN (conv 32/64/128 with batch norm, ≈ 400k parameters) trained once on the
10,000 training images by `pretrain()` (`labkit pretrain distillation`) and shipped, checksummed,
in data/pretrained/. The student is the lab's MLP 784-64-10 (≈ 51k parameters).

The distillation loss (Hinton et al., 2015) mixes two terms with a weight α:
    α · T² · KL(teacher softened at T ‖ student softened at T) + (1 − α) · cross-entropy(hard label).
The teacher's logits are computed once for the whole transfer set (it never trains again), so
the student's loop is the plain loop below with one line changed: the loss.

Headline (`labkit bench distillation`), measured in one run on this machine:
- kd_gain_pt: test accuracy of the distilled student minus the student trained from scratch, in
  points, mean over seeds, in the setting where distillation is meant to help: only `labelled`
  training images keep their labels, and the teacher's outputs cover all of them (the transfer set).
  Both students get the same number of optimizer steps. The card also shows the same comparison
  with every image labelled, where the gain is near zero: both settings are the lesson.
- student_speedup: teacher latency / student latency at batch 64 (batch 1 is on the card too), CPU,
  `threads` threads, the two models timed in turns (medians over rounds).
- size_ratio: teacher size on disk / student size on disk.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from labkit import bench, data, env, models, train
from labkit.errors import LabkitError
from labkit.paths import PRETRAINED_DIR
from labkit.results import BenchReport, ResultCard
from labkit.techniques import pruning, quantization

TEACHER_FILE = PRETRAINED_DIR / "distillation_teacher.pt"
LATENCY_BATCHES = (64, 1)  # the card's latency_ms is at batch 64 (as in notebooks 07-08), latency_b1_ms at batch 1
REBUILD = "rebuild it with `labkit pretrain distillation` (or restore it with `git checkout data/`)"


# ----------------------------------------------------------------------------- settings

@dataclass
class DistillConfig:
    """One distillation experiment; saved with its results."""

    temperature: float = 2.0   # T: softens both distributions; 2 was best on a validation split
    alpha: float = 0.9         # weight of the soft (teacher) term; 1 − alpha weighs the hard labels
    labelled: int = 2000       # scarce setting: images with labels; the teacher labels all the rest
    steps: int = 1600          # optimizer steps per student (same for scratch and distilled): 20 epochs of 10k
    batch_size: int = 128
    lr: float = 0.05           # SGD with momentum 0.9, cosine decay to 0 over `steps`
    student_width: int = 64    # hidden units of the MLP student
    seeds: tuple[int, ...] = (0, 1, 2)
    threads: int = 2           # CPU threads for latency: fixed, so every model is timed alike
    latency_rounds: int = 3    # teacher and student timed in turns, this many times; medians reported
    train_threads: int = 1     # CPU threads for the students: an MLP step is too small to share out


def config_for(run_mode: str) -> DistillConfig:
    """Full mode: the real effect in about a minute; smoke mode: the same experiment, shrunk for CI."""
    return env.pick(smoke=DistillConfig(labelled=400, steps=250, seeds=(0, 1)), full=DistillConfig(),
                    run_mode=run_mode)


def check_settings(temperature: float, alpha: float) -> None:
    """Raise a one-line LabkitError for a temperature or weight that makes no sense."""
    if not temperature > 0:
        raise LabkitError(f"temperature T={temperature!r} must be greater than 0 (1 = the teacher's own "
                          "probabilities; try 2 to 4).")
    if not 0 <= alpha <= 1:
        raise LabkitError(f"alpha={alpha!r} must be between 0 (hard labels only) and 1 (teacher only); try 0.9.")


# ----------------------------------------------------------------------------- the teacher

class Teacher(nn.Module):
    """conv32-conv64-conv128, each with batch norm, ReLU and 2×2 pooling; then fc256 and the classifier."""

    def __init__(self, num_classes: int = 10):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                    nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 128))  # 28 -> 14 -> 7 -> 3
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Dropout(0.3),
                                        nn.Linear(256, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def pretrain(path: Path = TEACHER_FILE, epochs: int = 10, seed: int = 0) -> Path:
    """Train the teacher on the 10,000 training images (≈ 13.5 s/epoch on 2 cores) and save its weights."""
    env.seed_everything(seed)
    splits = data.load()
    teacher = Teacher()
    opt = torch.optim.SGD(teacher.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    result = train.fit(teacher, splits, epochs=epochs, opt=opt, seed=seed, device="cpu",
                       scheduler=lambda o, total: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=total))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(teacher.state_dict(), path)
    print(f"teacher: test accuracy {100 * result.final_acc:.2f} % after {epochs} epochs "
          f"({result.train_time_s:.0f} s); wrote {path} (sha256 {data.sha256(path)})")
    return path


def load_teacher(path: Path = TEACHER_FILE, device: torch.device | str = "cpu") -> Teacher:
    """The shipped teacher, checksum-verified, in eval mode (its batch norm uses the stored statistics)."""
    data.verify(Path(path), hint=REBUILD)
    teacher = Teacher()
    teacher.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return teacher.to(device).eval()


# ----------------------------------------------------------------------------- the technique

def soften(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities at temperature T: softmax(logits / T). T > 1 spreads them, T < 1 sharpens them."""
    # shown in notebook 09_distillation
    check_settings(temperature, 0.0)
    return F.softmax(logits / temperature, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of probabilities, in bits: 0 for one-hot, log2(10) ≈ 3.32 for uniform over 10."""
    return -(probs * probs.clamp_min(1e-12).log2()).sum(-1)


def temperature_table(logits: torch.Tensor, temperature: float) -> list[dict]:
    """Per image: the probabilities at T, the two most likely classes and the entropy (for the explorer)."""
    probs = soften(logits.detach().float().cpu(), temperature)
    rows = []
    for p, h in zip(probs, entropy_bits(probs)):
        top = p.topk(2)
        rows.append({"probs": p.tolist(), "top2": list(zip(top.indices.tolist(), top.values.tolist())),
                     "entropy_bits": h.item()})
    return rows


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor,
            temperature: float, alpha: float) -> torch.Tensor:
    """α · T² · KL(teacher_T ‖ student_T) + (1 − α) · cross-entropy on the labelled examples (y ≥ 0).

    The T² keeps the soft term's gradients the same size whatever T is (they shrink as 1/T²).
    Examples without a label (y = −1) only learn from the teacher.
    """
    # shown in notebook 09_distillation
    check_settings(temperature, alpha)
    T = temperature
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1),
                    reduction="batchmean", log_target=True) * T * T
    labelled = y >= 0
    hard = F.cross_entropy(student_logits[labelled], y[labelled]) if labelled.any() else soft.new_zeros(())
    return alpha * soft + (1 - alpha) * hard


def labels_by_index(y: torch.Tensor) -> train.LossFn:
    """Cross-entropy as a `train.train_step` loss whose batch targets are the images' indices into y."""
    def loss_fn(logits: torch.Tensor, xb: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y[idx])

    return loss_fn


def kd_loss_fn(soft_targets: torch.Tensor, y: torch.Tensor, temperature: float, alpha: float) -> train.LossFn:
    """`kd_loss` as a `train.train_step` loss: the batch's targets `idx` are the images' INDICES, which
    look up their labels in y and the teacher's logits (computed once) in soft_targets."""
    # shown in notebook 09_distillation
    check_settings(temperature, alpha)

    def loss_fn(logits: torch.Tensor, xb: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return kd_loss(logits.float(), soft_targets[idx], y[idx], temperature, alpha)

    return loss_fn


@torch.no_grad()
def teacher_logits(teacher: nn.Module, X: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The teacher's logits for every image, computed once (eval mode: no dropout, stored BN statistics)."""
    teacher.eval()
    dev = next(teacher.parameters()).device
    return torch.cat([teacher(X[i:i + batch_size].to(dev)) for i in range(0, len(X), batch_size)]).float()


def train_student(model: nn.Module, X: torch.Tensor, y: torch.Tensor, cfg: DistillConfig, *, seed: int,
                  soft_targets: torch.Tensor | None = None) -> nn.Module:
    """Train `model` for `cfg.steps` SGD steps: cross-entropy from scratch, or `kd_loss` when the
    teacher's logits (`soft_targets`, one row per image of X) are given. y = −1 marks no label."""
    # shown in notebook 09_distillation
    if soft_targets is not None and len(soft_targets) != len(X):
        raise LabkitError(f"soft_targets has {len(soft_targets)} rows but X has {len(X)} images: "
                          "compute the teacher's logits on the same images.")
    if soft_targets is None and (y < 0).any():
        raise LabkitError("Training from scratch needs a label for every image: drop the unlabelled ones.")
    check_settings(cfg.temperature, cfg.alpha)
    env.seed_everything(seed)
    dev = X.device
    model.to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    # ## the one line distillation changes: the loss (each batch's targets are its images' indices)
    if soft_targets is None:
        loss_fn = labels_by_index(y)
    else:
        loss_fn = kd_loss_fn(soft_targets, y, cfg.temperature, cfg.alpha)
    order = torch.Generator().manual_seed(seed)
    step = 0
    while step < cfg.steps:
        for idx in torch.randperm(len(X), generator=order).split(cfg.batch_size):
            idx = idx.to(dev)
            train.train_step(model, opt, X[idx], idx, loss_fn=loss_fn)
            schedule.step()
            step += 1
            if step == cfg.steps:
                break
    return model.eval()


def hide_labels(y: torch.Tensor, labelled: int, seed: int = 0) -> torch.Tensor:
    """A copy of y where only `labelled` images keep their label (the same number per class, chosen
    with `seed`); every other image gets the label −1."""
    classes = y.unique()
    if not len(classes) <= labelled <= len(y):
        raise LabkitError(f"labelled={labelled} must be between {len(classes)} (one per class) and the "
                          f"{len(y)} training images.")
    order = torch.Generator().manual_seed(seed)
    keep = []
    for c in classes.tolist():
        members = (y == c).nonzero().flatten().cpu()
        keep.append(members[torch.randperm(len(members), generator=order)[:labelled // len(classes)]])
    keep = torch.cat(keep).to(y.device)
    hidden = torch.full_like(y, -1)
    hidden[keep] = y[keep]
    return hidden


@torch.no_grad()
def agreement(model: nn.Module, teacher_out: torch.Tensor, X: torch.Tensor) -> float:
    """Fraction of images on which `model` predicts the teacher's class."""
    return (model.eval()(X).argmax(1) == teacher_out.argmax(1).to(X.device)).float().mean().item()


def check_distilled(distilled_agreement: float, scratch_agreement: float, soft_targets: torch.Tensor,
                    temperature: float) -> None:
    """Raise when distillation did not take effect: the soft targets must carry information beyond
    the top class, and the distilled student must follow the teacher more closely than the scratch one."""
    probs = soften(soft_targets, temperature)
    if probs.max(1).values.mean() > 0.999:  # on average nothing beyond the top class
        raise LabkitError(f"At T={temperature} the teacher's soft targets are one-hot: raise the temperature.")
    if distilled_agreement <= scratch_agreement:
        raise LabkitError(f"The distilled student agrees with the teacher on {100 * distilled_agreement:.1f} % of "
                          f"test images, no more than the scratch one ({100 * scratch_agreement:.1f} %): "
                          "the teacher's targets did not reach the student (is alpha 0?).")


# ----------------------------------------------------------------------------- measurement

def macs_per_image(model: nn.Module) -> int:
    """Multiply-adds of one forward pass on one 28×28 image, counted over its Conv2d and Linear layers."""
    total = 0

    def count(layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):  # each output value: in_channels/groups × kernel area multiply-adds
            total += output.numel() * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            total += output.numel() * layer.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval().to("cpu")(torch.zeros(1, 1, 28, 28))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def measure_latencies(named: dict[str, nn.Module], cfg: DistillConfig) -> dict[str, dict[int, float]]:
    """Median CPU latency (ms) of one forward pass, per model and batch size, with `cfg.threads` threads.

    The models are timed in turns over `cfg.latency_rounds` rounds, so that a busy moment on a shared
    machine hits them all alike; each figure is the median over the rounds.
    """
    inputs = {b: torch.randn(b, 1, 28, 28) for b in LATENCY_BATCHES}
    samples: dict[str, dict[int, list[float]]] = {name: {b: [] for b in inputs} for name in named}
    with torch.no_grad():
        for _ in range(cfg.latency_rounds):
            for name, model in named.items():
                model = model.to("cpu").eval()
                for b, x in inputs.items():
                    timing = bench.time_fn(lambda: model(x), num_threads=cfg.threads, min_run_time=0.15)
                    samples[name][b].append(timing.median_ms)
    return {name: {b: statistics.median(ms) for b, ms in per_batch.items()} for name, per_batch in samples.items()}


def compare_students(splits: data.Splits, soft_all: torch.Tensor, y_train: torch.Tensor, cfg: DistillConfig,
                     teacher_test: torch.Tensor) -> dict[str, list[float]]:
    """Scratch vs distilled students over the seeds, with the labels in `y_train` (−1: no label).

    Scratch trains on the labelled images only; the distilled student on every image, the teacher's
    logits its target (and the hard label where there is one). Same number of steps for both.
    """
    labelled = y_train >= 0
    out: dict[str, list[float]] = {"scratch": [], "distilled": [], "agree_scratch": [], "agree_distilled": []}
    with env.cpu_threads(cfg.train_threads):
        for seed in cfg.seeds:
            for name in ("scratch", "distilled"):
                env.seed_everything(seed)  # same initial weights for both students
                student = models.MLP(width=cfg.student_width, num_classes=soft_all.shape[1]).to(splits.X_train.device)
                if name == "scratch":
                    train_student(student, splits.X_train[labelled], y_train[labelled], cfg, seed=seed)
                else:
                    train_student(student, splits.X_train, y_train, cfg, seed=seed, soft_targets=soft_all)
                out[name].append(train.evaluate(student, splits.X_test, splits.y_test)[1])
                out[f"agree_{name}"].append(agreement(student, teacher_test, splits.X_test))
    return out


def hard_pseudo_label_students(splits: data.Splits, soft_all: torch.Tensor, y_train: torch.Tensor,
                               cfg: DistillConfig) -> list[float]:
    """Test accuracy per seed of students trained with plain cross-entropy on the teacher's TOP CLASS
    for every unlabelled image: the teacher's extra labels without its soft probabilities."""
    y_pseudo = torch.where(y_train >= 0, y_train, soft_all.argmax(1).to(y_train.device))
    accs = []
    with env.cpu_threads(cfg.train_threads):
        for seed in cfg.seeds:
            env.seed_everything(seed)
            student = models.MLP(width=cfg.student_width, num_classes=soft_all.shape[1]).to(splits.X_train.device)
            train_student(student, splits.X_train, y_pseudo, cfg, seed=seed)
            accs.append(train.evaluate(student, splits.X_test, splits.y_test)[1])
    return accs


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def headline(mode: str | None = None, cfg: DistillConfig | None = None) -> BenchReport:
    """Teacher vs student (latency, size, parameters), and scratch vs distilled students in two
    settings (every image labelled; only `cfg.labelled` labelled), over `cfg.seeds`."""
    run_mode = env.check_mode(mode)
    cfg = cfg or config_for(run_mode)
    check_settings(cfg.temperature, cfg.alpha)
    dev = env.device()
    splits = data.load_for_mode(run_mode, device=dev)
    teacher = load_teacher(device=dev)
    soft_all = teacher_logits(teacher, splits.X_train)
    teacher_test = teacher_logits(teacher, splits.X_test)
    teacher_acc = (teacher_test.argmax(1) == splits.y_test).float().mean().item()

    settings = {"all labelled": splits.y_train,
                f"{cfg.labelled} labelled": hide_labels(splits.y_train, cfg.labelled)}
    runs = {name: compare_students(splits, soft_all, y, cfg, teacher_test) for name, y in settings.items()}
    scarce = runs[f"{cfg.labelled} labelled"]
    check_distilled(statistics.mean(scarce["agree_distilled"]), statistics.mean(scarce["agree_scratch"]),
                    soft_all, cfg.temperature)

    student = models.MLP(width=cfg.student_width)
    sizes = {"teacher": bench.model_size_mb(teacher), "student": bench.model_size_mb(student)}
    params = {"teacher": models.count_params(teacher), "student": models.count_params(student)}
    lat = measure_latencies({"teacher": teacher, "student": student}, cfg)

    def cost(kind: str) -> dict:
        return {"latency_ms": lat[kind][64], "latency_b1_ms": lat[kind][1], "latency_threads": cfg.threads,
                "size_mb": sizes[kind], "params": params[kind]}

    card = ResultCard(title="Knowledge distillation: teacher vs MLP student", baseline="teacher")
    card.add({"variant": "teacher", "accuracy": teacher_acc, "acc_std_pt": 0.0, **cost("teacher")})
    gains = {}
    for setting, numbers in runs.items():
        for name in ("scratch", "distilled"):
            mean, std = _mean_std(numbers[name])
            card.add({"variant": f"student {name} · {setting}", "accuracy": mean, "acc_std_pt": 100 * std,
                      "agrees_with_teacher": statistics.mean(numbers[f"agree_{name}"]), **cost("student")})
        diffs = [100 * (d - s) for d, s in zip(numbers["distilled"], numbers["scratch"])]
        gains[setting] = _mean_std(diffs)
    scarce_gain = gains[f"{cfg.labelled} labelled"][0]
    return BenchReport(
        name="distillation", mode=run_mode, card=card,
        config=asdict(cfg) | {"latency_batches": LATENCY_BATCHES,
                              "gain_pt_by_setting": {k: {"mean": m, "std": s} for k, (m, s) in gains.items()},
                              "transfer_set": len(splits.y_train), "test_images": len(splits.y_test)},
        headline={"kd_gain_pt": scarce_gain,
                  "student_speedup": lat["teacher"][64] / lat["student"][64],
                  "size_ratio": sizes["teacher"] / sizes["student"]},
    )


# ----------------------------------------------------------------------------- the chain (optional)

def chain(teacher: nn.Module, X: torch.Tensor, y: torch.Tensor, soft_targets: torch.Tensor, splits: data.Splits,
          cfg: DistillConfig, sparsity: float = 0.7, seed: int = 0) -> ResultCard:
    """Distillation → pruning → quantization, each step applied to the model before it:
    a distilled student; the same student with `sparsity` of its weights pruned (global magnitude)
    and fine-tuned with the same KD loss (the masks keep the zeros); that pruned student in int8
    (torchao's x86 path). One card: accuracy, latency at batch 64 and 1 on the CPU, size on disk."""
    # shown in notebook 09_distillation

    student = train_student(models.MLP(width=cfg.student_width), X, y, cfg, seed=seed, soft_targets=soft_targets)
    pruned = pruning.prune_global(copy.deepcopy(student), sparsity)
    tune = replace(cfg, steps=max(cfg.steps // 4, 1), lr=cfg.lr / 5)  # a short, gentle fine-tune
    pruned = pruning.make_permanent(train_student(pruned, X, y, tune, seed=seed, soft_targets=soft_targets))
    pruned = pruned.cpu().eval()
    int8 = quantization.int8_static_x86(pruned, X.cpu(), batches=8)
    compiled = torch.compile(int8)
    for batch in LATENCY_BATCHES:  # compile now, for each batch size, so that no compile is timed
        quantization.compile_now(compiled, torch.randn(batch, 1, 28, 28))
    named = {"teacher": teacher, "student, distilled": student, f"+ pruned {sparsity:.0%}": pruned,
             "+ int8": compiled}
    latency = measure_latencies(named, cfg)
    sizes = {"teacher": bench.model_size_mb(teacher), "student, distilled": bench.model_size_mb(student),
             f"+ pruned {sparsity:.0%}": pruning.sparse_bytes(pruned) / 1e6, "+ int8": quantization.graph_size_mb(int8)}
    card = ResultCard(title="The chain: distil, then prune, then quantize", baseline="teacher")
    X_test, y_test = splits.X_test.cpu(), splits.y_test.cpu()
    for name, model in named.items():
        model_for_accuracy = int8 if name == "+ int8" else model.cpu()
        card.add({"variant": name, "accuracy": train.evaluate(model_for_accuracy, X_test, y_test)[1],
                  "latency_ms": latency[name][64], "latency_b1_ms": latency[name][1], "size_mb": sizes[name],
                  "nonzero_weights": pruning.nonzero_params(pruned if name == "+ int8" else model)})
    return card


def pareto_front(card: ResultCard, cost: str = "latency_ms") -> list[str]:
    """The variants no other variant beats on both accuracy and `cost` (smaller is better)."""
    rows = card.rows
    return [r["variant"] for r in rows
            if not any(o["accuracy"] >= r["accuracy"] and o[cost] <= r[cost]
                       and (o["accuracy"] > r["accuracy"] or o[cost] < r[cost]) for o in rows)]


def fewer_errors_pct(scratch_acc: float, distilled_acc: float) -> float:
    """How many of the scratch student's errors distillation removes, in percent."""
    return 100 * (distilled_acc - scratch_acc) / (1 - scratch_acc)

