"""Checks for notebooks/11_speedrun.ipynb: time to target, a warm-up factor, a marginal gain, accumulation."""

from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from torch.nn import functional as F

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def _history() -> pd.DataFrame:
    """A run's evaluations, small enough to read by hand."""
    return pd.DataFrame({"epoch": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                         "test_acc": [0.71, 0.80, 0.86, 0.84, 0.87, 0.88],
                         "train_time_s": [1.5, 3.0, 4.5, 6.0, 7.5, 9.0]})


def time_to_target(fn: Callable) -> str:
    """`fn(history, target_acc)`: training seconds at the FIRST evaluation at or above the target; None if never."""
    name = "Exercise 1 (time to target)"
    hist = _history()
    result = call_answer(name, fn, hist.copy(), 0.85)
    if result is None:
        if call_answer(name, fn, hist.copy(), 0.5) is None:
            return not_attempted(name, "keep the rows with test_acc >= target, then take the first one's train_time_s.")
        raise Hint(f"{name}: you return None although the accuracy reaches 85 % (0.86 at epoch 1.5).")
    if close(result, 4.5):
        never = call_answer(name, fn, hist.copy(), 0.95)
        if never is not None:
            raise Hint(f"{name}: a run that never reaches the target must give None, not {never!r} "
                       "(it is reported as 'not reached', never dropped or given a made-up time).")
        return passed(name)
    if close(result, 7.5):
        raise Hint(f"{name}: got 7.5 s: that is the first evaluation ABOVE 0.86; 'at or above' the target "
                   "includes 0.86 ≥ 0.85 at 4.5 s.")
    if close(result, 1.5):
        raise Hint(f"{name}: got 1.5: return the row's train_time_s (seconds), not its epoch, and compare "
                   "test_acc with the target.")
    if close(result, 9.0):
        raise Hint(f"{name}: got 9.0 s: that is the end of training; the clock stops at the FIRST evaluation "
                   "at or above the target.")
    if close(result, 1.5 + 3.0 + 4.5):
        raise Hint(f"{name}: train_time_s is already cumulative: read it, do not add it up.")
    raise Hint(f"{name}: got {result!r}; in this history the accuracy first reaches 85 % at epoch 1.5.")


def warmup(fn: Callable) -> str:
    """`fn(step, warmup_steps)`: the rate's multiplier, rising linearly from 0.1 at step 0 to 1 at
    `warmup_steps`, and 1 from then on (and always 1 when warmup_steps is 0)."""
    name = "Exercise 2 (a linear warm-up)"
    cases = {(0, 10): 0.1, (5, 10): 0.55, (9, 10): 0.91, (10, 10): 1.0, (50, 10): 1.0, (0, 0): 1.0, (3, 0): 1.0}
    first = call_answer(name, fn, 0, 10)
    if first is None:
        return not_attempted(name, "start at 0.1 and add 0.9 × step / warmup_steps; after the warm-up, 1.")
    wrong = {}
    for (step, n), expected in cases.items():
        got = call_answer(name, fn, step, n)
        if not close(got, expected, rel=1e-6):
            wrong[(step, n)] = got
    if not wrong:
        return passed(name)
    if (0, 10) in wrong and close(wrong[(0, 10)], 0.0):
        raise Hint(f"{name}: at step 0 you give 0: a rate of 0 wastes the first step; start from 0.1.")
    if (50, 10) in wrong:
        raise Hint(f"{name}: after the warm-up (step 50 of 10) the factor must stay 1, got {wrong[(50, 10)]!r}.")
    if (0, 0) in wrong or (3, 0) in wrong:
        raise Hint(f"{name}: with warmup_steps = 0 there is no warm-up: return 1 (and never divide by 0).")
    (step, n), got = next(iter(wrong.items()))
    raise Hint(f"{name}: at step {step} of {n} expected {cases[(step, n)]}, got {got!r}.")


def marginal_gain(fn: Callable) -> str:
    """`fn(time_before_s, time_after_s)`: how many times faster to the target the new row is than the one before."""
    name = "Exercise 3 (the marginal gain of a row)"
    result = call_answer(name, fn, 12.0, 8.0)
    if result is None:
        return not_attempted(name, "a gain above 1 means the switch helped: divide the time before by the time after.")
    if close(result, 1.5):
        slower = call_answer(name, fn, 6.0, 8.0)
        if not close(slower, 0.75):
            raise Hint(f"{name}: from 6 s to 8 s the switch made things SLOWER: the gain must be 0.75 (below 1), "
                       f"got {slower!r}.")
        return passed(name)
    if close(result, 8.0 / 12.0):
        raise Hint(f"{name}: got {result:.3g}: that is after / before; a speedup is before / after (above 1 = faster).")
    if close(result, 4.0):
        raise Hint(f"{name}: got 4: that is the seconds saved; the table reports a ratio.")
    if close(result, 100 * 4.0 / 12.0) or close(result, 4.0 / 12.0):
        raise Hint(f"{name}: got {result:.3g}: that is the share of time saved; report before / after.")
    raise Hint(f"{name}: got {result!r}; 12 s before and 8 s after is 1.5× faster.")


def accumulation(fn: Callable) -> str:
    """`fn(model, X, y, k)`: add up the gradients of k equal micro-batches of (X, y) in the parameters'
    .grad so that they equal the gradient of ONE mean loss over the whole batch (no optimizer step)."""
    name = "Exercise 4 (accumulation that matches the big batch)"
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    F.cross_entropy(model(X), y).backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    result = call_answer(name, fn, model, X.clone(), y.clone(), 4)
    grads = [p.grad for p in model.parameters()]
    if any(gr is None for gr in grads):
        if result is None:
            return not_attempted(name, "for each of the k chunks: loss = cross_entropy(...) / k, then loss.backward().")
        raise Hint(f"{name}: the parameters have no .grad: call backward() on each micro-batch's loss.")
    if all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, expected)):
        return passed(name)
    if all(torch.allclose(a, 4 * b, atol=1e-5) for a, b in zip(grads, expected)):
        raise Hint(f"{name}: the gradients are k = 4 times too big: each micro-batch's mean loss must be divided by k.")
    if all(torch.allclose(a, b / 4, atol=1e-6) for a, b in zip(grads, expected)):
        raise Hint(f"{name}: the gradients are k times too small: divide each loss by k once, not the sum again.")
    raise Hint(f"{name}: the summed gradients differ from the big batch's: did you zero .grad between micro-batches? "
               "Accumulating means letting them add up.")
