"""Checks for notebooks/10_transfer_learning.ipynb. The notebook shows how to replace a head, freeze the whole
backbone and decay rates by a given factor; its exercises ask for what it does not show: a head that keeps the
source classes, partial freezing, rates between two given ends, and reading labels off a measured curve."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from labkit import models
from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import transfer as answers

__all__ = ["new_head", "freeze", "rates", "labels_matched", "hint", "solution"]


def _tiny(width: int, num_classes: int, blocks_per_stage: int = 1, seed: int = 0) -> models.TinyResNet:
    """A small TinyResNet standing in for a pretrained one."""
    with torch.random.fork_rng(devices=[]):  # the learner's random state stays as it was
        torch.manual_seed(seed)
        return models.TinyResNet(width=width, num_classes=num_classes, blocks_per_stage=blocks_per_stage)


# ------------------------------------------------------------------ exercise 1: a head that keeps the source classes

# (width, source classes, new classes): the backbone's feature count and both class counts vary.
HEAD_CASES = [(4, 5, 3), (2, 4, 1), (6, 3, 5)]


@exercise("Exercise 1 (a head that keeps the source classes)", hints=[
    "the notebook threw the source head away. Here the target task adds classes to the source's, so the new "
    "head needs an output for every old class and every new one, and the old classes should keep what the "
    "source head learned about them.",
    "make a new linear layer: its inputs are the backbone's features, the same number the old head took; its "
    "outputs are the old classes plus the new ones.",
    "copy the old head's weight rows and its bias into the first outputs of the new layer, without tracking "
    "gradients, leave the other rows as they were initialised, and put the new layer on the model.",
])
def new_head(fn: Callable) -> None:
    """`fn(model, num_new)`: model.head becomes a linear layer with old + num_new outputs whose first outputs are
    the old head's (weights and bias copied), on the unchanged backbone; returns the model."""
    for width, old_classes, num_new in HEAD_CASES:
        model = _tiny(width, old_classes)
        old = model.head
        old_w, old_b = old.weight.detach().clone(), old.bias.detach().clone()
        backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        result = ask(fn, model, num_new)
        head = getattr(result, "head", None)
        case = f"for a head with {old_classes} source classes, {old.in_features} features, adding {num_new}"
        if not isinstance(head, nn.Linear):
            raise Hint(f"{case}: the returned model's head is a {type(head).__name__}; return the model, with a "
                       "linear layer as its head.")
        if head.in_features != old.in_features:
            raise Hint(f"{case}: the new head takes {head.in_features} inputs, but the backbone gives "
                       f"{old.in_features} features per image: read them from the old head's inputs.")
        if head.out_features == num_new:
            raise Hint(f"{case}: the head was replaced by one with only the {num_new} new outputs; the source "
                       f"classes' outputs are gone. Keep the {old_classes} old ones too.")
        if head.out_features != old_classes + num_new:
            raise Hint(f"{case}: the new head has {head.out_features} outputs; it needs one per old class plus "
                       f"one per new class, {old_classes + num_new}.")
        after = result.backbone.state_dict()
        if any(not torch.equal(after[k], v) for k, v in backbone.items()):
            raise Hint(f"{case}: the backbone changed; keep the pretrained backbone as it is.")
        w, b = head.weight.detach(), head.bias.detach()
        first_w, first_b = torch.equal(w[:old_classes], old_w), torch.equal(b[:old_classes], old_b)
        if not first_w and torch.equal(w[-old_classes:], old_w):
            raise Hint(f"{case}: the old rows were copied to the last outputs; the old classes keep their "
                       "numbers, so they must be the first outputs.")
        if not first_w:
            raise Hint(f"{case}: the first {old_classes} outputs do not carry the old head's weights: they were "
                       "not copied, so the source classes start from scratch.")
        if not first_b:
            raise Hint(f"{case}: the old weights were copied but not the old bias; copy both.")
        x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(width))
        with torch.no_grad():
            out, features = result.eval()(x), result.backbone(x)
        if out.shape != (3, old_classes + num_new) or not torch.allclose(out[:, :old_classes], old(features),
                                                                         atol=1e-5):
            raise Hint(f"{case}: the model's outputs for the old classes differ from the old head's.")


# ------------------------------------------------------------------ exercise 2: freeze all but the last blocks

def _blocks(model: nn.Module) -> list[int]:
    return [i for i, m in enumerate(model.backbone) if isinstance(m, models.ResidualBlock)]


def _frozen_model(model: models.TinyResNet) -> models.TinyResNet:
    """The model as a linear probe leaves it: the backbone frozen, batch norm in eval mode."""
    model.backbone.eval().requires_grad_(False)
    return model


# (blocks per stage, blocks kept trainable, arrives frozen): 3 or 6 blocks, none to two kept; the last case
# arrives frozen from a linear probe, so the kept blocks must be unfrozen, not only left alone.
FREEZE_CASES = [(1, 1, False), (1, 0, False), (1, 2, False), (2, 2, False), (1, 1, True)]


@exercise("Exercise 2 (freeze all but the last blocks)", hints=[
    "the notebook froze the whole backbone. Here only the residual blocks nearest the head keep learning: "
    "which parts of the model must stop getting gradients, which must get them, and what must batch norm do "
    "in the frozen parts?",
    "list the backbone's residual blocks in order and pick the last few; everything else in the backbone, "
    "the stem included, is frozen. Careful when the number to keep is zero, and remember the model may "
    "arrive already frozen.",
    "for every part of the backbone: a kept block gets gradients and training mode, anything else no "
    "gradients and evaluation mode, so its batch norm keeps the source statistics. The head always learns. "
    "Return the model.",
])
def freeze(fn: Callable) -> None:
    """`fn(model, n_blocks)`: the last n_blocks residual blocks of the backbone and the head trainable (gradients,
    training mode), everything else in the backbone frozen (no gradients, evaluation mode); returns the model."""
    for per_stage, n, arrives_frozen in FREEZE_CASES:
        model = _tiny(4, 5, per_stage)
        if arrives_frozen:
            _frozen_model(model)
        blocks = _blocks(model)
        keep = set(blocks[len(blocks) - n:])
        case = (f"with {len(blocks)} residual blocks and {n} to keep trainable"
                + (", on a model that arrives frozen from a linear probe" if arrives_frozen else ""))
        result = ask(fn, model, n)
        if not isinstance(getattr(result, "backbone", None), nn.Sequential):
            raise Hint(f"{case}: got a {type(result).__name__}; return the model.")
        parts = list(result.backbone)
        learns = {i for i, m in enumerate(parts) if any(p.requires_grad for p in m.parameters())}
        with_params = {i for i, m in enumerate(parts) if any(True for _ in m.parameters())}
        learning_blocks = sorted(learns & set(blocks))
        if not all(p.requires_grad for p in result.head.parameters()):
            raise Hint(f"{case}: the head is frozen too; it must learn the target classes, so leave it trainable.")
        if n == 0 and learning_blocks == blocks:
            raise Hint(f"{case}: every block still learns. Keeping zero blocks means freezing them all; a slice "
                       "that counts from minus zero starts at the beginning, not at the end.")
        if learning_blocks == blocks[:n] and learning_blocks != blocks[len(blocks) - n:]:
            raise Hint(f"{case}: the first {n} blocks learn, the ones nearest the input: keep the last ones, "
                       "nearest the head, trainable.")
        if n and not learning_blocks:
            if arrives_frozen:
                raise Hint(f"{case}: no block learns. The model arrived frozen, so the kept blocks must be made "
                           "trainable again, not only left alone.")
            raise Hint(f"{case}: no block learns. The backbone's last parts are the pooling and the flattening, "
                       "which have no weights: count residual blocks, not the backbone's parts.")
        if set(learning_blocks) != keep:
            raise Hint(f"{case}: blocks {learning_blocks} of {blocks} learn: count again, exactly the last {n} "
                       "should.")
        if learns - set(blocks):
            raise Hint(f"{case}: the stem (the first convolution and its batch norm) still learns: it is not one of "
                       "the kept blocks, so freeze it too.")
        half = [i for i in with_params if any(p.requires_grad for p in parts[i].parameters())
                and not all(p.requires_grad for p in parts[i].parameters())]
        if half:
            raise Hint(f"{case}: parts {half} of the backbone are partly frozen: a kept block learns whole.")
        batch_norms = {i: [m for m in parts[i].modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
                       for i in with_params}
        if any(bn.training for i in with_params - keep for bn in batch_norms[i]):
            raise Hint(f"{case}: no gradients reach the frozen parts, but their batch norm is in training mode and "
                       "would overwrite the source statistics on every batch: put the frozen parts in eval mode.")
        if any(not bn.training for i in keep for bn in batch_norms[i]):
            raise Hint(f"{case}: the blocks you fine-tune are in eval mode: their batch norm must adapt to the "
                       "target's statistics, so keep them in training mode.")
        # Watch one training step: gradients must reach exactly the kept blocks and the head, and the frozen
        # batch norms must keep their statistics.
        stats = {k: v.clone() for k, v in result.backbone.state_dict().items() if "running" in k}
        result.zero_grad(set_to_none=True)
        result(torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(n))).sum().backward()
        got_grad = {i for i in with_params if any(p.grad is not None for p in parts[i].parameters())}
        moved = {int(k.split(".")[0]) for k, v in result.backbone.state_dict().items()
                 if "running" in k and not torch.equal(v, stats[k])}
        if got_grad != keep or not moved <= keep or result.head.weight.grad is None:
            raise Hint(f"{case}: in one training step, parts {sorted(got_grad)} got gradients and parts "
                       f"{sorted(moved)} updated their statistics; only the kept blocks {sorted(keep)} may.")


# ------------------------------------------------------------------ exercise 3: rates between two ends

# (head rate, lowest rate, groups): steps of 0.1, 0.5, 0.1 and 0.25 between groups; 2 to 5 groups.
RATE_CASES = [(0.1, 0.001, 3), (0.2, 0.0125, 5), (0.3, 0.0003, 4), (0.04, 0.01, 2)]


def _geometric(head: float, lowest: float, n: int, steps: int | None = None, shift: int = 0) -> list[float]:
    decay = (lowest / head) ** (1 / (steps if steps is not None else n - 1))
    return [head * decay ** (i + shift) for i in range(n)]


@exercise("Exercise 3 (discriminative rates between two ends)", hints=[
    "the notebook multiplied by a given decay. Here you are given the two ends instead: the head's rate "
    "and the rate of the group nearest the input. Which decay takes you from one end to the other in equal "
    "ratios, over how many steps?",
    "with some number of groups there is one step fewer between them than there are groups. Every step "
    "multiplies by the same factor, so that factor, applied once per step, must turn the head's rate into "
    "the lowest rate: a root, not a division.",
    "the head comes first and gets its own rate unchanged; each following group gets the factor once more. "
    "Return one rate per group, as a list.",
])
def rates(fn: Callable) -> None:
    """`fn(head_lr, lowest_lr, n_groups)`: n_groups rates, the head first at head_lr, the group nearest the input
    last at lowest_lr, each group the same factor below the one before it."""
    for head, lowest, n in RATE_CASES:
        result = ask(fn, head, lowest, n)
        try:
            result = [float(r) for r in result]
        except (TypeError, ValueError):
            raise Hint(f"got {result!r}: return a list of rates, one per group.") from None
        case = f"for a head rate of {head}, a lowest rate of {lowest} and {n} groups you returned " \
               f"{[float(f'{r:.6g}') for r in result]}"
        if len(result) != n:
            raise Hint(f"{case}: {len(result)} rates for {n} groups; return one rate per group.")
        expected = _geometric(head, lowest, n)
        if all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(result, expected)):
            continue
        ratio = lowest / head
        mistakes = [
            (expected[::-1], "the order is reversed: the head comes first, with the largest rate."),
            ([head - (head - lowest) * i / (n - 1) for i in range(n)], "those rates are evenly spaced, the same "
             "difference between neighbours; discriminative rates keep the same ratio between neighbours."),
            (_geometric(head, lowest, n, steps=n), f"the last group does not reach the lowest rate: between {n} "
             f"groups there are {n - 1} steps, not {n}."),
            ([head * ratio ** i for i in range(n)], "that uses the whole drop from the head's rate to the lowest "
             "as the factor of every single step; take the root over the steps instead."),
            ([head * (ratio / (n - 1)) ** i for i in range(n)], "the whole drop was divided by the number of "
             "steps; a factor applied once per step needs a root, not a division."),
            (_geometric(head, lowest, n, shift=1), "the head itself should get the head's rate, undecayed."),
        ]
        for value, message in mistakes:
            if all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(result, value)):
                raise Hint(f"{case}: {message}")
        if not math.isclose(result[0], head, rel_tol=1e-6):
            raise Hint(f"{case}: the head, first, should get the head's rate {head}.")
        if not math.isclose(result[-1], lowest, rel_tol=1e-6):
            raise Hint(f"{case}: the last group should get the lowest rate {lowest}.")
        raise Hint(f"{case}: every group should be the same factor below the one before it.")


# ------------------------------------------------------------------ exercise 4: labels read off a curve

# (ks, scratch accuracies, fine-tuned accuracy, expected). A tie (at least as good counts it), a curve that
# dips again after reaching (the first k counts), one never reached (None), one reached at once.
LABEL_CASES = [
    ([5, 20, 100, 1000], [0.55, 0.71, 0.84, 0.93], 0.80, 100),
    ([1, 5, 20, 50], [0.30, 0.62, 0.62, 0.90], 0.62, 5),
    ([2, 10, 50, 250], [0.40, 0.70, 0.65, 0.80], 0.68, 10),
    ([5, 20, 100, 1000], [0.55, 0.71, 0.84, 0.93], 0.95, None),
    ([3, 30, 300], [0.50, 0.60, 0.70], 0.45, 3),
]


def _call(fn: Callable, *args):
    """Call the learner's answer, whose None can be a right answer here."""
    try:
        return fn(*args)
    except Hint:
        raise
    except Exception as error:  # the learner's code failed: say so in one line
        raise Hint(f"your code raised {type(error).__name__}: {error}") from None


@exercise("Exercise 4 (how many labels is pretraining worth?)", hints=[
    "walk along the measured label budgets from the smallest, together with scratch's accuracy at each, and "
    "stop at the first one where scratch is at least as good as fine-tuning was. What should you give back "
    "when it never gets there?",
    "at least as good includes a tie. Stop at the first budget that qualifies, even if a later one dips "
    "again; give back the budget itself, not its position or its accuracy.",
    "when the walk ends without finding one, give back None, not the last budget and not zero.",
])
def labels_matched(fn: Callable) -> None:
    """`fn(ks, scratch_accs, finetuned_acc)`: the first k whose scratch accuracy is >= finetuned_acc, else None."""
    for ks, accs, tuned, want in LABEL_CASES:
        result = _call(fn, list(ks), list(accs), tuned)
        if result == want and (want is None) == (result is None):
            continue
        case = f"for scratch accuracies {accs} at k={ks} and {tuned} fine-tuned you returned {result!r}"
        if result is None:
            raise Hint(f"{case}: your function returned nothing (None) where scratch does get there: did you "
                       "forget `return`?")
        if want is None:
            raise Hint(f"{case}: scratch never reaches {tuned} here; return None, not a number.")
        reached = [k for k, a in zip(ks, accs) if a >= tuned]
        below = [k for k, a in zip(ks, accs) if a < tuned]
        strict = next((k for k, a in zip(ks, accs) if a > tuned), None)
        if result == strict and strict != want:
            raise Hint(f"{case}: at k={want} scratch's accuracy equals the fine-tuned one, a tie: at least as "
                       "good counts it.")
        if result in below:
            raise Hint(f"{case}: that is a k where scratch is still below the fine-tuned accuracy; return the "
                       "first k where it reaches it.")
        if result == ks.index(want) or result == ks.index(want) + 1:
            raise Hint(f"{case}: that is the position of the k in the list; return k itself.")
        if result == accs[ks.index(want)]:
            raise Hint(f"{case}: that is scratch's accuracy; return the number of labels k.")
        if result == reached[-1] and len(reached) > 1:
            raise Hint(f"{case}: that is the last k that reaches it; stop at the first.")
        raise Hint(f"{case}: expected the first k whose scratch accuracy is at least {tuned}.")


hint, solution = helpers(__name__, answers)
