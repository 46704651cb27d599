"""The exercise catalogue of notebook 05 (momentum): per exercise, the answer key passes, the shipped stub is
"not attempted", an answer that forgets `return` is told so, a hard-coded constant fails, and each mistake
learners really make (written as the code they write) gets a Hint that names it. Plus: hints come in words,
and no exercise's answer is shown earlier in the notebook."""

import inspect
import json
import re
from pathlib import Path

import pytest
import torch

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint, NotAttempted
from labkit.exercises import momentum as m_check
from labkit.exercises.answers import momentum as m_key
from labkit.techniques import momentum as technique

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_momentum.ipynb"


# ---------------------------------------------------------------- exercise 1: Nesterov's step

def nesterov_stub(x, v, grad, lr, beta):
    # YOUR CODE
    ...


def nesterov_forgot_return(x, v, grad, lr, beta):
    v = beta * v + grad
    x = x - lr * (grad + beta * v)


def nesterov_heavy_ball(x, v, grad, lr, beta):
    v = beta * v + grad
    return x - lr * v, v


def nesterov_old_velocity(x, v, grad, lr, beta):
    x = x - lr * (grad + beta * v)
    v = beta * v + grad
    return x, v


def nesterov_uphill(x, v, grad, lr, beta):
    v = beta * v + grad
    return x + lr * (grad + beta * v), v


def nesterov_averaged(x, v, grad, lr, beta):
    v = beta * v + (1 - beta) * grad
    return x - lr * (grad + beta * v), v


def nesterov_look_ahead_as_state(x, v, grad, lr, beta):
    v = grad + beta * (beta * v + grad)
    return x - lr * v, v


def nesterov_returns_x_only(x, v, grad, lr, beta):
    v = beta * v + grad
    return x - lr * (grad + beta * v)


# ---------------------------------------------------------------- exercise 2: the k-th step on a steady slope

def steady_stub(lr, beta, grad, k):
    # YOUR CODE
    ...


def steady_forgot_return(lr, beta, grad, k):
    lr * grad * (1 - beta ** k) / (1 - beta)


def steady_the_limit(lr, beta, grad, k):
    return lr * grad / (1 - beta)


def steady_one_power_too_many(lr, beta, grad, k):
    v = 0.0
    for _ in range(k + 1):
        v = beta * v + grad
    return lr * v


def steady_loop_from_one(lr, beta, grad, k):
    v = 0.0
    for _ in range(1, k):
        v = beta * v + grad
    return lr * v


def steady_decaying(lr, beta, grad, k):
    return lr * grad * beta ** k


def steady_averaged(lr, beta, grad, k):
    m = 0.0
    for _ in range(k):
        m = beta * m + (1 - beta) * grad
    return lr * m


def steady_no_gradient(lr, beta, grad, k):
    return lr * (1 - beta ** k) / (1 - beta)


def steady_position_not_length(lr, beta, grad, k):
    v = 0.0
    for _ in range(k):
        v = beta * v + grad
    return -lr * v  # the change in x, not the distance moved against the gradient


def steady_hard_coded(lr, beta, grad, k):
    return 0.1


# ---------------------------------------------------------------- exercise 3: heavy ball's rate

def rate_stub(lr, beta, h):
    # YOUR CODE
    ...


def rate_forgot_return(lr, beta, h):
    a = 1 + beta - lr * h
    root = (a * a - 4 * beta) ** 0.5
    max(abs((a + root) / 2), abs((a - root) / 2))


def rate_gradient_descent(lr, beta, h):
    return abs(1 - lr * h)


def rate_sqrt_beta(lr, beta, h):
    return beta ** 0.5


def rate_smaller_root(lr, beta, h):
    a = 1 + beta - lr * h
    root = (a * a - 4 * beta) ** 0.5
    return min(abs((a + root) / 2), abs((a - root) / 2))


def rate_no_abs(lr, beta, h):
    import numpy as np
    roots = np.roots([1, -(1 + beta - lr * h), beta])
    return max(roots.real)


def rate_averaged(lr, beta, h):
    a = 1 + beta - lr * (1 - beta) * h
    root = (a * a - 4 * beta) ** 0.5
    return max(abs((a + root) / 2), abs((a - root) / 2))


def rate_hard_coded(lr, beta, h):
    return 0.5


def rate_complex(lr, beta, h):
    a = 1 + beta - lr * h
    root = (a * a - 4 * beta) ** 0.5
    return max((a + root) / 2, (a - root) / 2, key=abs)


# ---------------------------------------------------------------- exercise 4: RMSprop, bias-corrected

def rms_stub(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    # YOUR CODE
    ...


def rms_forgot_return(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    x = x - lr * grad / ((sq / (1 - alpha ** t)).sqrt() + eps)


def rms_no_correction(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    return x - lr * grad / (sq.sqrt() + eps), sq


def rms_corrected_state(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    sq = sq / (1 - alpha ** t)
    return x - lr * grad / (sq.sqrt() + eps), sq


def rms_off_by_one(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    return x - lr * grad / ((sq / (1 - alpha ** (t + 1))).sqrt() + eps), sq


def rms_alpha_to_the_t(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    return x - lr * grad / ((sq / alpha ** t).sqrt() + eps), sq


def rms_eps_under_the_root(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    return x - lr * grad / torch.sqrt(sq / (1 - alpha ** t) + eps), sq


def rms_no_root(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2
    return x - lr * grad / (sq / (1 - alpha ** t) + eps), sq


def rms_copied_adam(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    m = torch.zeros_like(x)
    x, m, sq = technique.adam_step(x, m, sq, grad, t, lr, beta1=0.9, beta2=alpha, eps=eps)
    return x, sq


# ---------------------------------------------------------------- the catalogue

# check, answer key, stub, forgot-return, {mistake: (student code, a word its hint must contain)}
CATALOGUE = {
    "nesterov": (m_check.nesterov, m_key.nesterov_step, nesterov_stub, nesterov_forgot_return, {
        "heavy ball, no look-ahead": (nesterov_heavy_ball, "heavy-ball"),
        "look-ahead with the old velocity": (nesterov_old_velocity, "old velocity"),
        "look-ahead kept as the state": (nesterov_look_ahead_as_state, "state"),
        "uphill": (nesterov_uphill, "uphill"),
        "averaged velocity": (nesterov_averaged, "averaged"),
        "returns x only": (nesterov_returns_x_only, "pair"),
    }),
    "steady_step": (m_check.steady_step, m_key.steady_step, steady_stub, steady_forgot_return, {
        "the limit, not the k-th step": (steady_the_limit, "limit"),
        "one power too many": (steady_one_power_too_many, "off by one"),
        "loop from one (one step short)": (steady_loop_from_one, "off by one"),
        "decaying": (steady_decaying, "decays"),
        "averaged convention": (steady_averaged, "averaged"),
        "gradient forgotten": (steady_no_gradient, "gradient is missing"),
        "change in x, sign flipped": (steady_position_not_length, "sign is flipped"),
        "hard-coded": (steady_hard_coded, "by hand"),
    }),
    "heavy_ball_rate": (m_check.heavy_ball_rate, m_key.heavy_ball_rate, rate_stub, rate_forgot_return, {
        "gradient descent's rate": (rate_gradient_descent, "gradient descent"),
        "√β everywhere": (rate_sqrt_beta, "complex roots only"),
        "the smaller root": (rate_smaller_root, "smaller root"),
        "signed root, no abs": (rate_no_abs, "magnitude"),
        "averaged convention": (rate_averaged, "averaged"),
        "hard-coded": (rate_hard_coded, "expected about"),
        "a complex number": (rate_complex, "absolute value"),
    }),
    "debiased_rmsprop": (m_check.debiased_rmsprop, m_key.rmsprop_debiased_step, rms_stub, rms_forgot_return, {
        "no correction (torch's RMSprop)": (rms_no_correction, "no bias correction"),
        "corrected mean kept as state": (rms_corrected_state, "state"),
        "correction off by one": (rms_off_by_one, "off by one"),
        "alpha to the t": (rms_alpha_to_the_t, "one minus"),
        "eps under the root": (rms_eps_under_the_root, "under the square root"),
        "no square root": (rms_no_root, "square root is missing"),
        "copied Adam with its momentum": (rms_copied_adam, "torch gives"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("name", CATALOGUE)
def test_no_constant_passes(name):
    """Every checker asks several inputs with different answers: the key's first answer, replayed for all
    of them, fails."""
    check, key, stub, *_ = CATALOGUE[name]
    params = list(inspect.signature(stub).parameters)
    first = {}

    def constant(*args, **kwargs):
        if "value" not in first:
            first["value"] = key(*args, **kwargs)
        value = first["value"]
        return tuple(v.clone() for v in value) if isinstance(value, tuple) else value
    constant.__signature__ = inspect.signature(stub)
    assert params
    with pytest.raises(Hint):
        check(constant)


def test_the_library_functions_the_notebook_shows_are_not_the_answers():
    """Nesterov's step is not the heavy-ball step, and torch's RMSprop step is not the corrected one."""
    with pytest.raises(Hint, match="heavy-ball"):
        m_check.nesterov(technique.heavy_ball_step)
    with pytest.raises(Hint, match="no bias correction"):
        m_check.debiased_rmsprop(lambda x, sq, grad, t, lr, alpha=0.99, eps=1e-8:
                                 technique.rmsprop_step(x, sq, grad, lr, alpha, eps))


def test_a_learner_error_is_reported_in_one_line():
    def crashes(lr, beta, h):
        return 1 / 0
    with pytest.raises(Hint, match="your code raised ZeroDivisionError"):
        m_check.heavy_ball_rate(crashes)


def test_under_nbgrader_an_untouched_exercise_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotAttempted, match="not attempted"):
        m_check.steady_step(steady_stub)


# ---------------------------------------------------------------- hints in words, the solution on request


def test_hints_one_level_at_a_time_and_the_solution_only_after_an_attempt(capsys):
    exercises._attempted.discard(("momentum", "heavy_ball_rate"))
    m_check.heavy_ball_rate(rate_stub)
    assert "Hint 2 of 3 for Exercise 3" in m_check.hint()
    refused = m_check.solution("heavy_ball_rate")
    assert "try it first" in refused and "def heavy_ball_rate" not in refused
    with pytest.raises(Hint):
        m_check.heavy_ball_rate(rate_sqrt_beta)
    assert "def heavy_ball_rate(lr, beta, h):" in m_check.solution("heavy_ball_rate")


# ---------------------------------------------------------------- the notebook

def _cells() -> list[str]:
    return ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]]


def test_no_answer_is_printed_before_its_exercise():
    """The notebook shows library functions with inspect.getsource: none of them is an exercise's answer."""
    shown = set(re.findall(r"getsource\(momentum\.(\w+)\)", "\n".join(_cells())))
    assert shown, "the notebook still shows the technique's code"
    assert not shown & {a.__name__ for a in m_key.KEY.values()}
    assert not shown & {"nesterov_step", "steady_step", "heavy_ball_rate", "rmsprop_debiased_step"}
