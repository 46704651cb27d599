"""The exercise catalogue of notebook 03_mixed_precision (labkit.exercises.amp): per exercise, the answer key
passes, the shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake
learners really make (written as the code they write) gets a Hint that names it. Exercise 3 is a procedure:
the checker watches it (autocast on, the gradient reaching the model scaled, the step unscaled, the gradients
cleared, an overflowing step skipped)."""

import json
import math
from pathlib import Path

import pytest
import torch

from exercise_catalogue import CatalogueTests
from labkit.exercises import amp as check
from labkit.exercises.answers import amp as key

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_mixed_precision.ipynb"
F = torch.nn.functional


# ---------------------------------------------------------------- exercise 1: the gap between neighbours

def gap_stub(x, dtype):
    # YOUR CODE
    ...


def gap_forgot_return(x, dtype):
    torch.finfo(dtype).eps * 2.0 ** math.floor(math.log2(abs(x)))


def gap_eps(x, dtype):
    return torch.finfo(dtype).eps


def gap_relative(x, dtype):
    return torch.finfo(dtype).eps * abs(x)


def gap_round(x, dtype):
    return torch.finfo(dtype).eps * 2.0 ** round(math.log2(abs(x)))


def gap_ceil(x, dtype):
    return torch.finfo(dtype).eps * 2.0 ** math.ceil(math.log2(abs(x)))


def gap_int(x, dtype):  # int() truncates toward zero: wrong below 1
    return torch.finfo(dtype).eps * 2.0 ** int(math.log2(abs(x)))


def gap_half(x, dtype):
    return torch.finfo(dtype).eps * 2.0 ** math.floor(math.log2(abs(x))) / 2


def gap_bf16_only(x, dtype):
    return 2.0 ** -7 * 2.0 ** math.floor(math.log2(abs(x)))


def gap_signed(x, dtype):
    return math.copysign(torch.finfo(dtype).eps * 2.0 ** math.floor(math.log2(abs(x))), x)


# ---------------------------------------------------------------- exercise 2: a loss scale that saves a gradient

def scale_stub(g):
    # YOUR CODE
    ...


def scale_forgot_return(g):
    k = max(0, math.ceil(math.log2(2 ** -14 / g)))
    2.0 ** k


def scale_subnormal(g):
    return 2.0 ** max(0, math.ceil(math.log2(2 ** -24 / g)))


def scale_down(g):
    return 2.0 ** math.ceil(math.log2(2 ** -14 / g))


def scale_floor(g):
    return 2.0 ** max(0, math.floor(math.log2(2 ** -14 / g)))


def scale_ratio(g):
    return max(1.0, 2 ** -14 / g)


def scale_strict(g):  # doubles while g·S ≤ tiny: one too many when g·S lands exactly on tiny
    s = 1.0
    while g * s <= 2 ** -14:
        s *= 2
    return s


def scale_one_more(g):
    return 2.0 ** (max(0, math.ceil(math.log2(2 ** -14 / g))) + 1)


def scale_loop(g):  # the procedure, right: double until normal
    s = 1.0
    while g * s < torch.finfo(torch.float16).tiny:
        s *= 2
    return s


def scale_hard_coded(g):
    return 1024


# ---------------------------------------------------------------- exercise 3: loss scaling by hand

def step_stub(model, opt, X, y, scale):
    # YOUR CODE
    ...


def step_forgot_return(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    opt.zero_grad()


def step_no_autocast(model, opt, X, y, scale):
    loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    opt.zero_grad()
    return loss


def step_fp16(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.float16):
        loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    opt.zero_grad()
    return loss


def step_not_scaled(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    loss.backward()
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    opt.zero_grad()
    return loss


def step_not_unscaled(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    opt.zero_grad()
    return loss


def step_no_skip(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    opt.step()
    opt.zero_grad()
    return loss


def step_no_zero_grad(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    return loss


def step_returns_scaled_loss(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y) * scale
    loss.backward()
    for p in model.parameters():
        p.grad /= scale
    if all(torch.isfinite(p.grad).all() for p in model.parameters()):
        opt.step()
    opt.zero_grad()
    return loss


def step_model_to_bf16(model, opt, X, y, scale):
    model.bfloat16()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X.bfloat16()), y)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    opt.step()
    opt.zero_grad()
    return loss


def step_grad_scaler(model, opt, X, y, scale):  # the library's scaler, disabled on a CPU bf16 run: no scaling
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, enabled=False)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    opt.zero_grad()
    return loss


def step_zero_first(model, opt, X, y, scale):  # right too: clears the gradients before backward
    opt.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    (loss * scale).backward()
    grads = [p.grad / scale for p in model.parameters()]
    if all(torch.isfinite(g).all() for g in grads):
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        opt.step()
    return loss


CATALOGUE = {
    "spacing": (check.spacing, key.my_spacing, gap_stub, gap_forgot_return, {
        "eps for every x": (gap_eps, "gap at 1"),
        "eps times x": (gap_relative, "eps times x"),
        "exponent rounded to nearest": (gap_round, "rounded to nearest"),
        "exponent rounded up": (gap_ceil, "interval above"),
        "int() of the logarithm": (gap_int, "interval above"),
        "half the gap": (gap_half, "rounding error"),
        "bf16 only": (gap_bf16_only, "`dtype`"),
        "negative gap": (gap_signed, "magnitude"),
    }),
    "min_loss_scale": (check.min_loss_scale, key.my_scale_for, scale_stub, scale_forgot_return, {
        "aims for the smallest subnormal": (scale_subnormal, "subnormal"),
        "scales down": (scale_down, "never goes below one"),
        "rounds the doublings down": (scale_floor, "round the number of doublings up"),
        "the exact ratio": (scale_ratio, "power of two"),
        "strictly greater": (scale_strict, "exactly"),
        "one more power": (scale_one_more, "too many"),
        "hard-coded": (scale_hard_coded, "another power of two"),
    }),
    "loss_scaled_step": (check.loss_scaled_step, key.my_scaled_step, step_stub, step_forgot_return, {
        "no autocast": (step_no_autocast, "without autocast"),
        "fp16 on a CPU": (step_fp16, "bf16"),
        "loss not scaled": (step_not_scaled, "without the scale"),
        "gradients not unscaled": (step_not_unscaled, "unscale"),
        "no skip on overflow": (step_no_skip, "skip"),
        "gradients never cleared": (step_no_zero_grad, "Zero the gradients"),
        "returns the scaled loss": (step_returns_scaled_loss, "scaled loss"),
        "model converted to bf16": (step_model_to_bf16, "keeps them fp32"),
        "a disabled GradScaler": (step_grad_scaler, "without the scale"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("answer", [scale_loop, step_zero_first], ids=["doubling loop", "zero_grad first"])
def test_other_right_answers_pass(answer):
    checker = check.min_loss_scale if answer is scale_loop else check.loss_scaled_step
    assert "passed" in checker(answer)


@pytest.mark.parametrize("x, dtype", [(1000.0, torch.float32), (0.3, torch.float32), (-3.0, torch.float64),
                                      (70.0, torch.float64)])
def test_the_spacing_key_is_the_distance_to_the_next_number(x, dtype):
    t = torch.tensor(abs(x), dtype=dtype)
    assert key.my_spacing(x, dtype) == (torch.nextafter(t, torch.tensor(math.inf, dtype=dtype)) - t).item()


def test_the_overflow_case_really_overflows():
    """The checker's skip test means something only if the scaled gradients are not finite there."""
    model = check._Recorder()
    X, y = check._batch(1, size=1e4)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(X), y)
    (loss * 2.0 ** 120).backward()
    assert not all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_notebook_calls_each_check_and_does_not_show_a_by_hand_scaler_before():
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]]
    for name in CATALOGUE:
        assert any(f"check.{name}(" in s for s in cells), name
    first = min(i for i, s in enumerate(cells) if "check." in s and "\ndef " in "\n" + s)
    assert not any("div_(" in s or "isfinite" in s for s in cells[:first])
