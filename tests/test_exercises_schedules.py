"""The exercise catalogue of notebooks 04 and 04b (labkit.exercises.schedules): per exercise, the answer key
passes, the shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake
learners really make (written as the code they write) gets a Hint that names it. Plus: no constant passes,
the early-stopping check watches that the answer does not read ahead, hints are words, the solution only on
request, and every exercise cell of the two notebooks has a key with the stub's signature."""

import ast
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint, NotAttempted
from labkit.exercises import schedules as check
from labkit.exercises.answers import schedules as key

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


# ---------------------------------------------------------------- 04, exercise 1: warm-up + cosine

def wc_stub(step, warmup_steps, total_steps):
    # YOUR CODE
    ...


def wc_forgot_return(step, warmup_steps, total_steps):
    if step < warmup_steps:
        step / warmup_steps
    else:
        0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def wc_floor_division(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step // warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def wc_progress_from_step_0(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * step / total_steps))


def wc_sign(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 0.5 * (1 - math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def wc_linear_decay(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 1 - (step - warmup_steps) / (total_steps - warmup_steps)


def wc_no_half(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps))


def wc_full_period(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 0.5 * (1 + math.cos(2 * math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def wc_warmup_one_ahead(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def wc_no_warmup(step, warmup_steps, total_steps):
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def wc_hard_coded_plan(step, warmup_steps, total_steps):  # right for the 10/100 plan only
    if step < 10:
        return step / 10
    return 0.5 * (1 + math.cos(math.pi * (step - 10) / 90))


# ---------------------------------------------------------------- 04, exercise 2: smoothing

def smooth_stub(losses, beta):
    # YOUR CODE
    ...


def smooth_forgot_return(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))


def smooth_no_correction(losses, beta):
    avg, out = 0.0, []
    for loss in losses:
        avg = beta * avg + (1 - beta) * loss
        out.append(avg)
    return out


def smooth_from_first_loss(losses, beta):
    avg, out = losses[0], []
    for loss in losses:
        avg = beta * avg + (1 - beta) * loss
        out.append(avg)
    return out


def smooth_swapped(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = (1 - beta) * avg + beta * loss
        out.append(avg / (1 - beta ** i))
    return out


def smooth_count_from_0(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return out


def smooth_one_late(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def smooth_corrected_in_place(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        avg = avg / (1 - beta ** i)
        out.append(avg)
    return out


def smooth_last_only(losses, beta):
    avg = 0.0
    for loss in losses:
        avg = beta * avg + (1 - beta) * loss
    return [avg / (1 - beta ** len(losses))]


def smooth_hard_coded(losses, beta):
    return [4.0, 2.0 / 0.75, 2.0 / 0.875]


# ---------------------------------------------------------------- 04, exercise 3: linear scaling + warm-up

def lin_stub(step, base_lr, base_batch, batch, warmup_steps):
    # YOUR CODE
    ...


def lin_forgot_return(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * batch / base_batch
    if step >= warmup_steps:
        target


def lin_inverted(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * base_batch / batch
    if step >= warmup_steps:
        return target
    return base_lr + (target - base_lr) * step / warmup_steps


def lin_sqrt(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * math.sqrt(batch / base_batch)
    if step >= warmup_steps:
        return target
    return base_lr + (target - base_lr) * step / warmup_steps


def lin_ramp_from_zero(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * batch / base_batch
    if step >= warmup_steps:
        return target
    return target * step / warmup_steps


def lin_no_warmup(step, base_lr, base_batch, batch, warmup_steps):
    return base_lr * batch / base_batch


def lin_never_stops(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * batch / base_batch
    if warmup_steps == 0:
        return target
    return base_lr + (target - base_lr) * step / warmup_steps


def lin_zero_division(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * batch / base_batch
    t = min(step / warmup_steps, 1.0)
    return base_lr + (target - base_lr) * t


def lin_floor_division(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * batch / base_batch
    if step >= warmup_steps:
        return target
    return base_lr + (target - base_lr) * (step // warmup_steps)


def lin_hard_coded(step, base_lr, base_batch, batch, warmup_steps):
    return 0.2


# ---------------------------------------------------------------- 04b, exercise 1: early stopping

def es_stub(val_losses, patience, min_delta):
    # YOUR CODE
    ...


def es_forgot_return(val_losses, patience, min_delta):
    best, bad = float("inf"), 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, bad = loss, 0
        else:
            bad += 1


def es_versus_previous(val_losses, patience, min_delta):
    previous, best_epoch, bad, epoch = float("inf"), 0, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < previous - min_delta:
            best_epoch, bad = epoch, 0
        else:
            bad += 1
        previous = loss
        if bad >= patience:
            break
    return epoch, best_epoch


def es_never_reset(val_losses, patience, min_delta):
    best, best_epoch, bad, epoch = float("inf"), 0, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, best_epoch = loss, epoch
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch, best_epoch


def es_from_zero(val_losses, patience, min_delta):
    best, best_epoch, bad = float("inf"), 0, 0
    for epoch in range(len(val_losses)):
        if val_losses[epoch] < best - min_delta:
            best, best_epoch, bad = val_losses[epoch], epoch, 0
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch, best_epoch


def es_one_late(val_losses, patience, min_delta):
    best, best_epoch, bad, epoch = float("inf"), 0, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
        if bad > patience:
            break
    return epoch, best_epoch


def es_no_min_delta(val_losses, patience, min_delta):
    best, best_epoch, bad, epoch = float("inf"), 0, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch, best_epoch


def es_higher_is_better(val_losses, patience, min_delta):
    best, best_epoch, bad, epoch = -float("inf"), 0, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss > best + min_delta:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch, best_epoch


def es_restores_last(val_losses, patience, min_delta):
    best, bad, epoch = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, bad = loss, 0
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch, epoch


def es_reads_ahead(val_losses, patience, min_delta):
    losses = list(val_losses)  # copies every epoch first, then answers from the whole curve
    best, best_epoch, bad, epoch = float("inf"), 0, 0, 0
    for epoch, loss in enumerate(losses, start=1):
        if loss < best - min_delta:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch, best_epoch


def es_only_the_stop(val_losses, patience, min_delta):
    best, bad, epoch = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, bad = loss, 0
        else:
            bad += 1
        if bad >= patience:
            break
    return epoch


def es_hard_coded(val_losses, patience, min_delta):
    return 7, 4


# ---------------------------------------------------------------- the catalogue

CATALOGUE = {
    "warmup_cosine": (check.warmup_cosine, key.warmup_cosine, wc_stub, wc_forgot_return, {
        "floor division in the warm-up": (wc_floor_division, "floor division"),
        "cosine progress from step 0": (wc_progress_from_step_0, "counted from step 0"),
        "sign flipped": (wc_sign, "sign"),
        "linear decay": (wc_linear_decay, "straight line"),
        "no halving": (wc_no_half, "halve"),
        "a whole cosine period": (wc_full_period, "whole cosine period"),
        "warm-up one step ahead": (wc_warmup_one_ahead, "one step ahead"),
        "no warm-up": (wc_no_warmup, "no warm-up"),
        "hard-coded plan": (wc_hard_coded_plan, "not the multipliers"),
    }),
    "smoothing": (check.smoothing, key.smooth, smooth_stub, smooth_forgot_return, {
        "no bias correction": (smooth_no_correction, "no bias correction"),
        "starts from the first loss": (smooth_from_first_loss, "starts from the first loss"),
        "beta swapped": (smooth_swapped, "swapped"),
        "counted from 0": (smooth_count_from_0, "divided by zero"),
        "correction one step late": (smooth_one_late, "one step late"),
        "corrected value fed back": (smooth_corrected_in_place, "fed back"),
        "only the last value": (smooth_last_only, "one smoothed value per loss"),
        "hard-coded": (smooth_hard_coded, "for losses"),
    }),
    "linear_scaling": (check.linear_scaling, key.scaled_lr, lin_stub, lin_forgot_return, {
        "ratio upside down": (lin_inverted, "upside down"),
        "square-root scaling": (lin_sqrt, "square-root"),
        "ramp from zero": (lin_ramp_from_zero, "starts at 0"),
        "no warm-up": (lin_no_warmup, "no warm-up"),
        "ramp never stops": (lin_never_stops, "keeps climbing"),
        "no warm-up divides by zero": (lin_zero_division, "divided by zero"),
        "floor division": (lin_floor_division, "floor division"),
        "hard-coded": (lin_hard_coded, "for base_lr"),
    }),
    "early_stopping": (check.early_stopping, key.early_stop, es_stub, es_forgot_return, {
        "compares with the previous epoch": (es_versus_previous, "previous one"),
        "never resets the count": (es_never_reset, "never reset"),
        "epochs from 0": (es_from_zero, "counted from 0"),
        "stops one epoch late": (es_one_late, "one epoch late"),
        "min_delta ignored": (es_no_min_delta, "min_delta is ignored"),
        "higher is better": (es_higher_is_better, "higher loss as better"),
        "restores the last weights": (es_restores_last, "best epoch, not the last"),
        "reads ahead": (es_reads_ahead, "later epochs do not exist yet"),
        "only the stop epoch": (es_only_the_stop, "two whole numbers"),
        "hard-coded": (es_hard_coded, "for losses"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("constant", [0.0, 0.5, 1.0, 0.2])
def test_no_constant_passes_the_number_checks(constant):
    for checker in (check.warmup_cosine, check.linear_scaling):
        with pytest.raises(Hint):
            checker(lambda *args: constant)
    with pytest.raises(Hint):
        check.smoothing(lambda losses, beta: [constant] * len(losses))


def test_early_stopping_passes_answers_written_other_ways():
    """Indexing by position, a while loop, numpy values: all fine as long as they do not read ahead."""
    def by_index(val_losses, patience, min_delta):
        best_epoch, bad = 1, 0
        for i in range(1, len(val_losses)):
            if val_losses[i] < val_losses[best_epoch - 1] - min_delta:
                best_epoch, bad = i + 1, 0
            else:
                bad += 1
            if bad >= patience:
                return i + 1, best_epoch
        return len(val_losses), best_epoch

    def with_numpy_floats(val_losses, patience, min_delta):
        stop, best = key.early_stop(val_losses, patience, min_delta)
        return np.int64(stop), np.int64(best)

    assert "passed" in check.early_stopping(by_index)
    assert "passed" in check.early_stopping(with_numpy_floats)


def test_the_epochs_sequence_behaves_like_a_list_and_notes_what_was_read():
    epochs = check.Epochs([0.5, 0.4, 0.3])
    assert len(epochs) == 3 and epochs[-1] == 0.3 and epochs.read == 3
    epochs = check.Epochs([0.5, 0.4, 0.3])
    assert epochs[:2] == [0.5, 0.4] and epochs.read == 2
    with pytest.raises(IndexError):
        epochs[3]


def test_a_learner_error_is_reported_in_one_line():
    with pytest.raises(Hint, match="your code raised KeyError"):
        check.early_stopping(lambda val_losses, patience, min_delta: {}["x"])


def test_under_nbgrader_an_untouched_exercise_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotAttempted, match="not attempted"):
        check.early_stopping(es_stub)


# ---------------------------------------------------------------- hints in words, the solution on request


def test_hints_come_one_level_at_a_time_for_the_exercise_checked_last(capsys):
    check.smoothing(smooth_stub)  # level 1, the nudge
    assert "Hint 2 of 3 for Exercise 2" in check.hint()
    assert "Hint 3 of 3" in check.hint() and "last hint" in capsys.readouterr().out
    assert "Hint 2 of 3 for Exercise 1 of 04b" in check.hint("early_stopping", 2)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("schedules", "linear_scaling"))
    check.linear_scaling(lin_stub)
    refused = check.solution("linear_scaling")
    assert "try it first" in refused and "batch / base_batch" not in refused
    with pytest.raises(Hint):
        check.linear_scaling(lin_sqrt)
    shown = check.solution("linear_scaling")
    assert "def scaled_lr(step, base_lr, base_batch, batch, warmup_steps):" in shown and "base_batch" in shown


# ---------------------------------------------------------------- the notebooks' cells and the key


def test_no_exercise_answer_is_shown_before_its_exercise():
    """The notebooks may show library code (`linear_scaling_lr`, the rule alone; `EarlyStopping` on an accuracy),
    but not a function that answers an exercise: `smooth` stays unshown, the others are variants."""
    for notebook in ("04_lr_schedules.ipynb", "04b_plateaus_and_early_stopping.ipynb"):
        cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
        shown = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "getsource(schedules.smooth)" not in shown, notebook
    from labkit.techniques import schedules
    assert "def smooth" not in inspect.getsource(schedules.lr_range_test)  # notebook 04 shows that one
    tree = ast.parse(inspect.getsource(check))
    assert any(isinstance(n, ast.ClassDef) and n.name == "Epochs" for n in tree.body)
