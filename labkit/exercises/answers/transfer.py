"""Reference answers for notebooks/10_transfer_learning.ipynb (the notebook imports `torch`, `nn` and `models`)."""

import torch
from torch import nn

from labkit import models


def extend_head(model, num_new):
    old = model.head
    head = nn.Linear(old.in_features, old.out_features + num_new)  # same features in, more classes out
    with torch.no_grad():  # copying into parameters is not a step to differentiate
        head.weight[:old.out_features] = old.weight  # the source classes keep what they learned
        head.bias[:old.out_features] = old.bias
    model.head = head  # the new classes' rows stay freshly initialised
    return model


def freeze_but_last(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    keep = blocks[len(blocks) - n_blocks:]  # the last n_blocks; blocks[-0:] would be all of them
    for module in model.backbone:
        trainable = module in keep
        module.train(trainable)  # frozen batch norm keeps the source's statistics
        module.requires_grad_(trainable)
    model.head.train().requires_grad_(True)  # the head always learns
    return model


def discriminative_lrs(head_lr, lowest_lr, n_groups):
    decay = (lowest_lr / head_lr) ** (1 / (n_groups - 1))  # n_groups rates, n_groups - 1 equal steps
    return [head_lr * decay ** i for i in range(n_groups)]  # the head first, undecayed


def scratch_labels_needed(ks, scratch_accs, finetuned_acc):
    for k, acc in zip(ks, scratch_accs):
        if acc >= finetuned_acc:  # "at least as good": a tie counts
            return k  # the first such k, even if a later k dips again
    return None  # scratch never got there in the ks measured


KEY = {"new_head": extend_head, "freeze": freeze_but_last, "rates": discriminative_lrs,
       "labels_matched": scratch_labels_needed}
