"""The exercise catalogue of notebook 10 (labkit.exercises.transfer): per exercise, the answer key passes, the
shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake learners really make
(written as the code they write) gets a Hint that names it. Plus: no constant passes, the freezing check watches
a training step, and the notebook's exercise cells match the key and come after nothing that answers them."""

import inspect
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from exercise_catalogue import CatalogueTests
from labkit import exercises, models
from labkit.exercises import Hint, NotAttempted
from labkit.exercises import transfer as check
from labkit.exercises.answers import transfer as key
from labkit.techniques import transfer

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "10_transfer_learning.ipynb"


# ---------------------------------------------------------------- exercise 1: a head that keeps the source classes

def head_stub(model, num_new):
    # YOUR CODE
    ...


def head_forgot_return(model, num_new):
    old = model.head
    head = nn.Linear(old.in_features, old.out_features + num_new)
    with torch.no_grad():
        head.weight[:old.out_features] = old.weight
        head.bias[:old.out_features] = old.bias
    model.head = head


def head_replaced(model, num_new):  # what the notebook's load_pretrained does
    model.head = nn.Linear(model.head.in_features, num_new)
    return model


def head_not_copied(model, num_new):
    model.head = nn.Linear(model.head.in_features, model.head.out_features + num_new)
    return model


def head_no_bias(model, num_new):
    old = model.head
    head = nn.Linear(old.in_features, old.out_features + num_new)
    with torch.no_grad():
        head.weight[:old.out_features] = old.weight
    model.head = head
    return model


def head_rows_at_the_end(model, num_new):
    old = model.head
    head = nn.Linear(old.in_features, old.out_features + num_new)
    with torch.no_grad():
        head.weight[num_new:] = old.weight
        head.bias[num_new:] = old.bias
    model.head = head
    return model


def head_without_no_grad(model, num_new):
    old = model.head
    head = nn.Linear(old.in_features, old.out_features + num_new)
    head.weight[:old.out_features] = old.weight
    head.bias[:old.out_features] = old.bias
    model.head = head
    return model


def head_inputs_from_outputs(model, num_new):
    old = model.head
    model.head = nn.Linear(old.out_features, old.out_features + num_new)
    return model


def head_hard_coded_features(model, num_new):  # the shipped TinyResNet(width=8) gives 32 features
    old = model.head
    model.head = nn.Linear(32, old.out_features + num_new)
    return model


def head_new_model(model, num_new):
    fresh = models.TinyResNet(width=model.head.in_features // 4, num_classes=model.head.out_features + num_new)
    with torch.no_grad():
        fresh.head.weight[:model.head.out_features] = model.head.weight
        fresh.head.bias[:model.head.out_features] = model.head.bias
    return fresh


# ---------------------------------------------------------------- exercise 2: freeze all but the last blocks

def fb_stub(model, n_blocks):
    # YOUR CODE
    ...


def fb_forgot_return(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    keep = blocks[len(blocks) - n_blocks:]
    for module in model.backbone:
        module.train(module in keep)
        module.requires_grad_(module in keep)


def fb_minus_zero(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    transfer.set_trainable([model.backbone], False)
    transfer.set_trainable(blocks[-n_blocks:], True)
    return model


def fb_first_blocks(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    transfer.set_trainable([model.backbone], False)
    transfer.set_trainable(blocks[:n_blocks], True)
    return model


def fb_backbone_children(model, n_blocks):
    children = list(model.backbone)
    transfer.set_trainable([model.backbone], False)
    transfer.set_trainable(children[len(children) - n_blocks:], True)
    return model


def fb_no_eval(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    keep = blocks[len(blocks) - n_blocks:]
    for module in model.backbone:
        module.requires_grad_(module in keep)
    return model


def fb_head_frozen(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    model.eval().requires_grad_(False)
    for block in blocks[len(blocks) - n_blocks:]:
        block.train().requires_grad_(True)
    return model


def fb_whole_eval(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    model.backbone.eval().requires_grad_(False)
    for block in blocks[len(blocks) - n_blocks:]:
        block.requires_grad_(True)
    return model


def fb_never_unfreezes(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    keep = blocks[len(blocks) - n_blocks:]
    for module in model.backbone:
        if module not in keep:
            module.eval().requires_grad_(False)
    return model


def fb_one_too_many(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    transfer.set_trainable([model.backbone], False)
    transfer.set_trainable(blocks[len(blocks) - n_blocks - 1:], True)
    return model


def fb_stem_left(model, n_blocks):
    blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
    transfer.set_trainable(blocks[:len(blocks) - n_blocks], False)
    transfer.set_trainable(blocks[len(blocks) - n_blocks:], True)
    return model


# ---------------------------------------------------------------- exercise 3: rates between two ends

def dl_stub(head_lr, lowest_lr, n_groups):
    # YOUR CODE
    ...


def dl_forgot_return(head_lr, lowest_lr, n_groups):
    decay = (lowest_lr / head_lr) ** (1 / (n_groups - 1))
    [head_lr * decay ** i for i in range(n_groups)]


def dl_reversed(head_lr, lowest_lr, n_groups):
    decay = (lowest_lr / head_lr) ** (1 / (n_groups - 1))
    return [head_lr * decay ** i for i in reversed(range(n_groups))]


def dl_linear(head_lr, lowest_lr, n_groups):
    step = (head_lr - lowest_lr) / (n_groups - 1)
    return [head_lr - step * i for i in range(n_groups)]


def dl_root_over_groups(head_lr, lowest_lr, n_groups):
    decay = (lowest_lr / head_lr) ** (1 / n_groups)
    return [head_lr * decay ** i for i in range(n_groups)]


def dl_whole_drop(head_lr, lowest_lr, n_groups):
    decay = lowest_lr / head_lr
    return [head_lr * decay ** i for i in range(n_groups)]


def dl_divided(head_lr, lowest_lr, n_groups):
    decay = lowest_lr / head_lr / (n_groups - 1)
    return [head_lr * decay ** i for i in range(n_groups)]


def dl_head_decayed(head_lr, lowest_lr, n_groups):
    decay = (lowest_lr / head_lr) ** (1 / (n_groups - 1))
    return [head_lr * decay ** (i + 1) for i in range(n_groups)]


def dl_hard_coded(head_lr, lowest_lr, n_groups):
    return [0.1, 0.01, 0.001]


# ---------------------------------------------------------------- exercise 4: labels read off a curve

def ln_stub(ks, scratch_accs, finetuned_acc):
    # YOUR CODE
    ...


def ln_forgot_return(ks, scratch_accs, finetuned_acc):
    for k, acc in zip(ks, scratch_accs):
        if acc >= finetuned_acc:
            break


def ln_strict(ks, scratch_accs, finetuned_acc):
    for k, acc in zip(ks, scratch_accs):
        if acc > finetuned_acc:
            return k
    return None


def ln_last_below(ks, scratch_accs, finetuned_acc):
    answer = None
    for k, acc in zip(ks, scratch_accs):
        if acc < finetuned_acc:
            answer = k
    return answer


def ln_no_break(ks, scratch_accs, finetuned_acc):
    answer = None
    for k, acc in zip(ks, scratch_accs):
        if acc >= finetuned_acc:
            answer = k
    return answer


def ln_position(ks, scratch_accs, finetuned_acc):
    for i, acc in enumerate(scratch_accs):
        if acc >= finetuned_acc:
            return i
    return None


def ln_accuracy(ks, scratch_accs, finetuned_acc):
    for acc in scratch_accs:
        if acc >= finetuned_acc:
            return acc
    return None


def ln_largest_when_never(ks, scratch_accs, finetuned_acc):
    for k, acc in zip(ks, scratch_accs):
        if acc >= finetuned_acc:
            return k
    return ks[-1]


def ln_hard_coded(ks, scratch_accs, finetuned_acc):
    return 100


# ---------------------------------------------------------------- the catalogue

CATALOGUE = {
    "new_head": (check.new_head, key.extend_head, head_stub, head_forgot_return, {
        "replaces the head (the notebook's way)": (head_replaced, "replaced"),
        "old rows not copied": (head_not_copied, "not copied"),
        "bias not copied": (head_no_bias, "bias"),
        "old rows at the end": (head_rows_at_the_end, "first outputs"),
        "copies without no_grad": (head_without_no_grad, "in-place"),
        "inputs from the old outputs": (head_inputs_from_outputs, "features per image"),
        "hard-coded feature count": (head_hard_coded_features, "features per image"),
        "builds a new model": (head_new_model, "backbone changed"),
    }),
    "freeze": (check.freeze, key.freeze_but_last, fb_stub, fb_forgot_return, {
        "slice from minus zero": (fb_minus_zero, "minus zero"),
        "the first blocks": (fb_first_blocks, "nearest the head"),
        "the backbone's last children": (fb_backbone_children, "pooling"),
        "no eval mode": (fb_no_eval, "batch norm"),
        "head frozen": (fb_head_frozen, "head is frozen"),
        "kept blocks in eval mode": (fb_whole_eval, "fine-tune are in eval mode"),
        "never unfreezes": (fb_never_unfreezes, "arrived frozen"),
        "one block too many": (fb_one_too_many, "count again"),
        "stem left trainable": (fb_stem_left, "stem"),
    }),
    "rates": (check.rates, key.discriminative_lrs, dl_stub, dl_forgot_return, {
        "reversed": (dl_reversed, "reversed"),
        "evenly spaced": (dl_linear, "evenly spaced"),
        "root over the groups": (dl_root_over_groups, "steps, not"),
        "the whole drop per step": (dl_whole_drop, "whole drop"),
        "divided instead of root": (dl_divided, "not a division"),
        "head decayed": (dl_head_decayed, "undecayed"),
        "hard-coded": (dl_hard_coded, "rates for"),
    }),
    "labels_matched": (check.labels_matched, key.scratch_labels_needed, ln_stub, ln_forgot_return, {
        "strict comparison": (ln_strict, "tie"),
        "last k still below": (ln_last_below, "still below"),
        "no break: the last k that reaches": (ln_no_break, "stop at the first"),
        "position instead of k": (ln_position, "position"),
        "accuracy instead of k": (ln_accuracy, "scratch's accuracy"),
        "largest k when never reached": (ln_largest_when_never, "return None"),
        "hard-coded": (ln_hard_coded, "expected the first k"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


# ---------------------------------------------------------------- specific to these exercises

@pytest.mark.parametrize("constant", [0.1, 0.01, 1.0])
def test_no_constant_passes_the_rates_check(constant):
    with pytest.raises(Hint):
        check.rates(lambda head_lr, lowest_lr, n_groups: [constant] * n_groups)


@pytest.mark.parametrize("constant", [None, 5, 20, 100, 1000])
def test_no_constant_passes_the_labels_check(constant):
    with pytest.raises(Hint):
        check.labels_matched(lambda ks, scratch_accs, finetuned_acc: constant)


def test_answers_written_other_ways_pass():
    def head_with_cat(model, num_new):
        old, extra = model.head, nn.Linear(model.head.in_features, num_new)
        head = nn.Linear(old.in_features, old.out_features + num_new)
        head.weight.data = torch.cat([old.weight.data, extra.weight.data])
        head.bias.data = torch.cat([old.bias.data, extra.bias.data])
        model.head = head
        return model

    def freeze_with_the_library(model, n_blocks):
        blocks = [m for m in model.backbone if isinstance(m, models.ResidualBlock)]
        keep = blocks[len(blocks) - n_blocks:]
        transfer.set_trainable([m for m in model.backbone if m not in keep], False)
        transfer.set_trainable([*keep, model.head], True)
        return model

    def rates_from_the_low_end(head_lr, lowest_lr, n_groups):
        factor = (head_lr / lowest_lr) ** (1 / (n_groups - 1))
        return [lowest_lr * factor ** (n_groups - 1 - i) for i in range(n_groups)]

    def labels_with_next(ks, scratch_accs, finetuned_acc):
        return next((k for k, a in zip(ks, scratch_accs) if a >= finetuned_acc), None)

    assert "passed" in check.new_head(head_with_cat)
    assert "passed" in check.freeze(freeze_with_the_library)
    assert "passed" in check.rates(rates_from_the_low_end)
    assert "passed" in check.labels_matched(labels_with_next)


def test_the_freezing_check_watches_a_training_step():
    """Flags that look right but a forward hook that still updates a frozen batch norm's statistics are caught."""
    def sneaky(model, n_blocks):
        key.freeze_but_last(model, n_blocks)
        stem_bn = model.backbone[1]

        def update(module, inputs):
            module.running_mean.add_(1.0)
        stem_bn.register_forward_pre_hook(update)
        return model

    with pytest.raises(Hint, match="updated their statistics"):
        check.freeze(sneaky)


def test_a_learner_error_is_reported_in_one_line():
    with pytest.raises(Hint, match="your code raised KeyError"):
        check.labels_matched(lambda ks, scratch_accs, finetuned_acc: {}["x"])


def test_under_nbgrader_an_untouched_exercise_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotAttempted, match="not attempted"):
        check.labels_matched(ln_stub)


def test_hints_one_level_at_a_time_and_the_solution_only_after_an_attempt(capsys):
    exercises._attempted.discard(("transfer", "rates"))
    check.rates(dl_stub)
    assert "Hint 2 of 3 for Exercise 3" in check.hint()
    refused = check.solution("rates")
    assert "try it first" in refused and "n_groups - 1" not in refused
    with pytest.raises(Hint):
        check.rates(dl_linear)
    assert "def discriminative_lrs(head_lr, lowest_lr, n_groups):" in check.solution("rates")


# ---------------------------------------------------------------- the notebook's cells and the key

def _cells() -> list[dict]:
    return json.loads(NOTEBOOK.read_text())["cells"]


def test_what_the_notebook_shows_does_not_answer_an_exercise():
    """The notebook shows load_pretrained (a head replaced), set_trainable on the whole backbone and a given decay;
    the exercises are variants: no shown source copies old head rows, picks the last blocks, takes a root, or reads
    a label curve."""
    shown = [transfer.load_pretrained, transfer.labelled_subset, transfer.from_scratch, transfer.set_trainable,
             transfer.linear_probe, transfer.fine_tune, transfer.layer_groups, transfer.discriminative,
             transfer.check_strategy]
    code = "\n".join(inspect.getsource(f) for f in shown)
    for telltale in ("out_features +", "n_blocks", "** (1 /", "finetuned_acc", ">= "):
        assert telltale not in code, telltale
    source = "\n".join("".join(c["source"]) for c in _cells() if c["cell_type"] == "code")
    assert "getsource(key" not in source and "answers" not in source
