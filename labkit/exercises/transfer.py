"""Checks for notebooks/10_transfer_learning.ipynb: a new head, freezing, discriminative rates, labels saved."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from labkit import models
from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def _tiny_pretrained() -> models.TinyResNet:
    """A small TinyResNet standing in for a pretrained one (5 source classes)."""
    torch.manual_seed(0)
    return models.TinyResNet(width=4, num_classes=5)


def new_head(replace_head: Callable) -> str:
    """`replace_head(model, num_classes)` puts a fresh linear layer for `num_classes` on the backbone."""
    name = "Exercise 1 (a new head for the new task)"
    model = _tiny_pretrained()
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    old_head = model.head
    result = call_answer(name, replace_head, model, 3)
    if result is None:
        return not_attempted(name, "assign model.head a new nn.Linear whose inputs are the backbone's output "
                                   "features (model.head.in_features) and return the model.")
    if not isinstance(getattr(result, "head", None), nn.Linear):
        raise Hint(f"{name}: the returned model's .head should be an nn.Linear.")
    if result.head is old_head:
        raise Hint(f"{name}: the head is still the source task's layer; make a NEW nn.Linear.")
    if result.head.in_features != old_head.in_features:
        raise Hint(f"{name}: the new head takes {result.head.in_features} inputs, but the backbone gives "
                   f"{old_head.in_features} features per image: read them from model.head.in_features.")
    if result.head.out_features != 3:
        raise Hint(f"{name}: the new head has {result.head.out_features} outputs; it needs one per target class "
                   "(num_classes).")
    after = result.backbone.state_dict()
    if any(not torch.equal(after[k], v) for k, v in backbone_before.items()):
        raise Hint(f"{name}: the backbone changed; keep the pretrained backbone as it is — that is the point.")
    with torch.no_grad():
        out = result.eval()(torch.zeros(2, 1, 28, 28))
    if out.shape != (2, 3):
        raise Hint(f"{name}: the model returns shape {tuple(out.shape)} for 2 images, (2, 3) expected.")
    return passed(name)


def freeze(freeze_backbone: Callable) -> str:
    """`freeze_backbone(model)` freezes the backbone for a linear probe and returns the model."""
    name = "Exercise 2 (freeze the backbone)"
    model = _tiny_pretrained()
    result = call_answer(name, freeze_backbone, model)
    if result is None:
        return not_attempted(name, "set requires_grad_(False) on every backbone parameter, put the backbone in "
                                   "eval mode, and return the model.")
    frozen = [p.requires_grad for p in result.backbone.parameters()]
    if any(frozen):
        raise Hint(f"{name}: {sum(frozen)} of {len(frozen)} backbone parameters still have requires_grad=True.")
    if not all(p.requires_grad for p in result.head.parameters()):
        raise Hint(f"{name}: the head is frozen too; a linear probe trains the head, so leave it trainable.")
    bn_training = [m for m in result.backbone.modules() if isinstance(m, nn.BatchNorm2d) and m.training]
    if bn_training:
        raise Hint(f"{name}: no gradients flow, but {len(bn_training)} batch-norm layer(s) are in training mode and "
                   "will still overwrite their running statistics: call .eval() on the backbone.")
    return passed(name)


def rates(discriminative_lrs: Callable) -> str:
    """`discriminative_lrs(head_lr, decay, n_groups)`: one rate per group, head first, each earlier group × decay."""
    name = "Exercise 3 (discriminative learning rates)"
    result = call_answer(name, discriminative_lrs, 0.1, 0.5, 4)
    if result is None:
        return not_attempted(name, "the head gets head_lr; each group further from the head gets decay times the "
                                   "rate of the group before it.")
    result = list(result)
    expected = [0.1, 0.05, 0.025, 0.0125]
    if len(result) != 4:
        raise Hint(f"{name}: got {len(result)} rates for n_groups=4; return one rate per group.")
    if all(close(a, b) for a, b in zip(result, expected)):
        return passed(name)
    if all(close(a, b) for a, b in zip(result, expected[::-1])):
        raise Hint(f"{name}: got {result}: the order is reversed. The head (group 0) gets the largest rate.")
    if all(close(a, b) for a, b in zip(result, [0.05, 0.025, 0.0125, 0.00625])):
        raise Hint(f"{name}: got {result}: the head itself should get head_lr, undecayed (decay ** 0).")
    raise Hint(f"{name}: got {result} for head_lr=0.1, decay=0.5, 4 groups; multiply by decay once per step "
               "away from the head.")


def labels_matched(scratch_labels_needed: Callable) -> str:
    """`scratch_labels_needed(ks, scratch_accs, finetuned_acc)`: the smallest k at which training from scratch
    is at least as accurate as fine-tuning was (None when no k in the list gets there)."""
    name = "Exercise 4 (how many labels is pretraining worth?)"
    ks, accs = [5, 20, 100, 1000], [0.55, 0.71, 0.84, 0.93]
    result = call_answer(name, scratch_labels_needed, ks, accs, 0.80)
    if result is None and call_answer(name, scratch_labels_needed, ks, accs, 0.5) is None:
        return not_attempted(name, "walk through ks and scratch_accs together and return the first k whose "
                                   "accuracy is >= finetuned_acc.")
    if result == 20:
        raise Hint(f"{name}: got 20, the last k where scratch is still BELOW the fine-tuned accuracy; "
                   "return the first k where it reaches it.")
    if result == 1000:
        raise Hint(f"{name}: got 1000, the largest k: stop at the first k that reaches the fine-tuned accuracy.")
    if result != 100:
        raise Hint(f"{name}: got {result!r} for scratch accuracies {accs} at k={ks} and 0.80 fine-tuned; "
                   "expected the first k whose scratch accuracy is at least 0.80.")
    never = call_answer(name, scratch_labels_needed, ks, accs, 0.95)
    if never is not None:
        raise Hint(f"{name}: got {never!r} for a fine-tuned accuracy of 0.95 that scratch never reaches; return None.")
    return passed(name)
