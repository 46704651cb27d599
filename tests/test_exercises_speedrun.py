"""The exercise catalogue of notebook 11_speedrun (labkit.exercises.speedrun): per exercise, the answer key
passes, the shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake
learners really make (written as the code they write) gets a Hint that names it. Plus: the accumulation check
watches the procedure (one backward pass per micro-batch), and other correct answers pass."""

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint
from labkit.exercises import speedrun as check
from labkit.exercises.answers import speedrun as key

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "11_speedrun.ipynb"


# ---------------------------------------------------------------- exercise 1: time to target

def ttt_stub(history, target_acc):
    # YOUR CODE
    ...


def ttt_forgot_return(history, target_acc):
    reached = history[history["test_acc"] >= target_acc]
    if not reached.empty:
        reached["train_time_s"].iloc[0]


def ttt_strictly_above(history, target_acc):
    reached = history[history["test_acc"] > target_acc]
    return None if reached.empty else reached["train_time_s"].iloc[0]


def ttt_epoch(history, target_acc):
    reached = history[history["test_acc"] >= target_acc]
    return None if reached.empty else reached["epoch"].iloc[0]


def ttt_end_of_training(history, target_acc):
    reached = history[history["test_acc"] >= target_acc]
    return None if reached.empty else history["train_time_s"].iloc[-1]


def ttt_best_row(history, target_acc):
    if history["test_acc"].max() < target_acc:
        return None
    return history.loc[history["test_acc"].idxmax(), "train_time_s"]


def ttt_added_up(history, target_acc):
    total = 0.0
    for _, row in history.iterrows():
        total += row["train_time_s"]
        if row["test_acc"] >= target_acc:
            return total
    return None


def ttt_never_is_last_time(history, target_acc):
    reached = history[history["test_acc"] >= target_acc]
    return history["train_time_s"].iloc[-1] if reached.empty else reached["train_time_s"].iloc[0]


def ttt_hard_coded(history, target_acc):
    return 4.5


# ---------------------------------------------------------------- exercise 2: a linear warm-up

def warm_stub(step, warmup_steps):
    # YOUR CODE
    ...


def warm_forgot_return(step, warmup_steps):
    if warmup_steps == 0 or step >= warmup_steps:
        return 1.0
    0.1 + 0.9 * step / warmup_steps


def warm_from_zero(step, warmup_steps):
    if warmup_steps == 0 or step >= warmup_steps:
        return 1.0
    return step / warmup_steps


def warm_not_capped(step, warmup_steps):
    if warmup_steps == 0:
        return 1.0
    return 0.1 + 0.9 * step / warmup_steps


def warm_overshoots(step, warmup_steps):
    if warmup_steps == 0 or step >= warmup_steps:
        return 1.0
    return 0.1 + step / warmup_steps


def warm_one_ahead(step, warmup_steps):
    if warmup_steps == 0 or step >= warmup_steps:
        return 1.0
    return 0.1 + 0.9 * (step + 1) / warmup_steps


def warm_floor_division(step, warmup_steps):
    if warmup_steps == 0 or step >= warmup_steps:
        return 1.0
    return 0.1 + 0.9 * (step // warmup_steps)


def warm_divides_by_zero(step, warmup_steps):
    return min(1.0, 0.1 + 0.9 * step / warmup_steps)


def warm_ten_steps(step, warmup_steps):
    return min(1.0, 0.1 + 0.9 * step / 10)


def warm_clamped(step, warmup_steps):  # a correct answer written differently
    return 1.0 if warmup_steps == 0 else min(1.0, 0.1 + 0.9 * step / warmup_steps)


# ---------------------------------------------------------------- exercise 3: marginal gain

def gain_stub(time_before_s, time_after_s):
    # YOUR CODE
    ...


def gain_forgot_return(time_before_s, time_after_s):
    time_before_s / time_after_s


def gain_upside_down(time_before_s, time_after_s):
    return time_after_s / time_before_s


def gain_seconds_saved(time_before_s, time_after_s):
    return time_before_s - time_after_s


def gain_share_saved(time_before_s, time_after_s):
    return (time_before_s - time_after_s) / time_before_s


def gain_percent_saved(time_before_s, time_after_s):
    return 100 * (time_before_s - time_after_s) / time_before_s


def gain_never_below_one(time_before_s, time_after_s):
    return max(time_before_s, time_after_s) / min(time_before_s, time_after_s)


def gain_hard_coded(time_before_s, time_after_s):
    return 1.5


# ---------------------------------------------------------------- exercise 4: accumulation

def acc_stub(model, X, y, micro_batch):
    # YOUR CODE
    ...


def acc_forgot_return(model, X, y, micro_batch):
    total = 0.0
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):
        loss = F.cross_entropy(model(xs), ys) * len(xs) / len(X)
        loss.backward()
        total += loss.item()


def acc_one_big_backward(model, X, y, micro_batch):  # the right gradients, but no accumulation at all
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    return loss.item()


def acc_all_forwards_first(model, X, y, micro_batch):  # the right gradients, every graph kept at once
    losses = [F.cross_entropy(model(xs), ys) * len(xs) / len(X)
              for xs, ys in zip(X.split(micro_batch), y.split(micro_batch))]
    total = sum(losses)
    total.backward()
    return total.item()


def acc_divide_by_count(model, X, y, micro_batch):
    chunks = list(zip(X.split(micro_batch), y.split(micro_batch)))
    total = 0.0
    for xs, ys in chunks:
        loss = F.cross_entropy(model(xs), ys) / len(chunks)
        loss.backward()
        total += loss.item()
    return total


def acc_not_divided(model, X, y, micro_batch):
    total = 0.0
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):
        loss = F.cross_entropy(model(xs), ys)
        loss.backward()
        total += loss.item()
    return total


def acc_zeroed_between(model, X, y, micro_batch):
    total = 0.0
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):
        model.zero_grad()
        loss = F.cross_entropy(model(xs), ys) * len(xs) / len(X)
        loss.backward()
        total += loss.item()
    return total


def acc_size_as_count(model, X, y, micro_batch):
    total = 0.0
    for xs, ys in zip(X.chunk(micro_batch), y.chunk(micro_batch)):
        loss = F.cross_entropy(model(xs), ys) * len(xs) / len(X)
        loss.backward()
        total += loss.item()
    return total


def acc_returns_last_loss(model, X, y, micro_batch):
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):
        loss = F.cross_entropy(model(xs), ys) * len(xs) / len(X)
        loss.backward()
    return loss.item()


def acc_sum_reduction(model, X, y, micro_batch):  # a correct answer written differently
    total = 0.0
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):
        loss = F.cross_entropy(model(xs), ys, reduction="sum") / len(X)
        loss.backward()
        total += loss.item()
    return torch.tensor(total)


CATALOGUE = {
    "time_to_target": (check.time_to_target, key.time_to_target, ttt_stub, ttt_forgot_return, {
        "strictly above": (ttt_strictly_above, "at or above"),
        "the epoch": (ttt_epoch, "epoch"),
        "end of training": (ttt_end_of_training, "end of training"),
        "the best row": (ttt_best_row, "best accuracy"),
        "times added up": (ttt_added_up, "cumulative"),
        "never reached gets a time": (ttt_never_is_last_time, "never reaches"),
        "hard-coded": (ttt_hard_coded, "every argument"),
    }),
    "warmup": (check.warmup, key.warmup, warm_stub, warm_forgot_return, {
        "from zero": (warm_from_zero, "starts at zero"),
        "not capped": (warm_not_capped, "after the warm-up"),
        "overshoots": (warm_overshoots, "overshoots"),
        "one step ahead": (warm_one_ahead, "one step ahead"),
        "floor division": (warm_floor_division, "whole-number division"),
        "divides by zero": (warm_divides_by_zero, "divided by zero"),
        "hard-coded 10 steps": (warm_ten_steps, "warmup_steps argument"),
    }),
    "marginal_gain": (check.marginal_gain, key.marginal_gain, gain_stub, gain_forgot_return, {
        "upside down": (gain_upside_down, "upside down"),
        "seconds saved": (gain_seconds_saved, "seconds saved"),
        "share saved": (gain_share_saved, "share"),
        "percent saved": (gain_percent_saved, "percentage"),
        "never below one": (gain_never_below_one, "slower"),
        "hard-coded": (gain_hard_coded, "both arguments"),
    }),
    "accumulation": (check.accumulation, key.accumulate, acc_stub, acc_forgot_return, {
        "one big backward": (acc_one_big_backward, "no accumulation"),
        "all forwards first": (acc_all_forwards_first, "before the first backward"),
        "divided by the count": (acc_divide_by_count, "number of micro-batches"),
        "not divided": (acc_not_divided, "not divided"),
        "zeroed between": (acc_zeroed_between, "zeroed"),
        "size read as count": (acc_size_as_count, "not their number"),
        "returns the last loss": (acc_returns_last_loss, "last micro-batch's loss"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("answer", [warm_clamped])
def test_another_correct_warmup_passes(answer):
    assert "passed" in check.warmup(answer)


def acc_loss_without_grad(model, X, y, micro_batch):  # correct: the returned loss is computed off the graph
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):
        (F.cross_entropy(model(xs), ys) * len(xs) / len(X)).backward()
    with torch.no_grad():
        return F.cross_entropy(model(X), y).item()


@pytest.mark.parametrize("answer", [acc_sum_reduction, acc_loss_without_grad])
def test_other_correct_accumulations_pass(answer):
    assert "passed" in check.accumulation(answer)


def test_dividing_by_the_count_is_right_for_equal_micro_batches_only():
    """The checker must catch it on the uneven cases: on an even split it is the notebook's own method."""
    assert any(rows % micro for rows, micro, _ in check.ACCUM_CASES)
    assert any(rows % micro == 0 for rows, micro, _ in check.ACCUM_CASES)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("speedrun", "accumulation"))
    check.accumulation(acc_stub)
    assert "try it first" in check.solution("accumulation")
    with pytest.raises(Hint):
        check.accumulation(acc_one_big_backward)
    assert "def accumulate(model, X, y, micro_batch):" in check.solution("accumulation")


def test_every_exercise_cell_of_the_notebook_has_a_key_with_the_stubs_name():
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    for name, (chk, answer, stub, *_) in CATALOGUE.items():
        cell = next(c for c in cells if f"check.{name}(" in c)
        assert f"def {answer.__name__}{str(__import__('inspect').signature(stub))}:" in cell, name
