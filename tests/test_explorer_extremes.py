"""Every explorer's controls pressed through their extremes, as a hostile but realistic learner would.

For each control: its minimum and maximum, typed values beyond them, NaN and ±infinity where a text box
takes a float, every option of a drop-down, each checkbox flipped; then every button pressed. Nothing may
escape (an exception from a handler or a background thread), no press may block for long, every status or
error line is ONE line, and the widget stays usable (buttons enabled again, the next press works).
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time

import ipywidgets as widgets
import numpy as np
import pytest
import torch

from labkit import LabkitError, data, env, models, train, ui
from labkit.ui.base import RunPanel

# Fixtures and tiny inputs of the technique tests (tests/ is on sys.path: pytest imports test modules by name).
from test_hpo import _synthetic_comparison
from test_pruning import trained  # noqa: F401  (a fixture)
from test_speedrun import TINY as SPEEDRUN_TINY
from test_speedrun import tiny_inputs  # noqa: F401  (a fixture)
from test_transfer import TINY as TRANSFER_TINY
from test_transfer import tiny_source, tiny_target  # noqa: F401  (fixtures)

PRESS_LIMIT_S = 30.0   # a synchronous press on these tiny inputs ends in seconds; this bound only catches a hang
STOP_LIMIT_S = 30.0    # after Stop, a background run ends within this
NOT_CONTROLS = (widgets.HTML, widgets.Image, widgets.Output, widgets.Label, widgets.IntProgress,
                widgets.FloatProgress, widgets.Button)


def walk(widget: widgets.Widget) -> list[widgets.Widget]:
    """Every widget in the tree under `widget`, depth first."""
    out = [widget]
    for child in getattr(widget, "children", ()):
        out += walk(child)
    return out


def controls(explorer) -> list[widgets.Widget]:
    return [w for w in walk(explorer.widget) if isinstance(w, widgets.ValueWidget) and not isinstance(w, NOT_CONTROLS)]


def buttons(explorer) -> list[widgets.Button]:
    stop = getattr(explorer, "stop_button", None)
    return [w for w in walk(explorer.widget) if isinstance(w, widgets.Button) and w is not stop]


def extremes(control: widgets.Widget) -> list:
    """The values a learner can reach: the ends of a slider, typed values past a text box's sense, NaN, ±inf."""
    if isinstance(control, widgets.FloatLogSlider):
        return [control.base ** control.min, control.base ** control.max]
    if isinstance(control, (widgets.Dropdown, widgets.ToggleButtons, widgets.RadioButtons)):
        return [value for _, value in control._options_full if value != control.value] + [control.value]
    if isinstance(control, widgets.Checkbox):
        return [not control.value, control.value]
    if isinstance(control, (widgets.BoundedIntText, widgets.BoundedFloatText)):
        return [control.min, control.max, control.min - 1, control.max + 1]  # typed beyond: clamped
    if hasattr(control, "min") and hasattr(control, "max"):  # sliders: the ends are the extremes
        return [control.min, control.max]
    if isinstance(control, widgets.IntText):
        return [0, -1, -(10**9), 10**9]
    if isinstance(control, widgets.FloatText):
        return [0.0, -1.0, 1e300, -1e300, math.nan, math.inf, -math.inf]
    raise AssertionError(f"no extremes known for {type(control).__name__}: add them to this test")


class Escapes:
    """Collects exceptions that escape from background threads (threading.excepthook)."""

    def __init__(self):
        self.errors: list[str] = []

    def __enter__(self):
        self.previous = threading.excepthook
        threading.excepthook = lambda args: self.errors.append(f"{args.exc_type.__name__}: {args.exc_value}")
        return self

    def __exit__(self, *exc):
        threading.excepthook = self.previous


RAW_ERROR = re.compile(r"^⚠ [A-Z]\w*(Error|Exception|Interrupt|Warning)\b")


def one_line(explorer) -> None:
    """The status or error line is one line, and an error says what to do: a LabkitError's message, not a raw
    exception that slipped past the checks (those are shown as '⚠ TypeName: …' by the catch-all)."""
    for line in (explorer.message.value, explorer.summary if explorer.summary.startswith("⚠") else ""):
        assert "\n" not in line and "<br" not in line.lower(), f"more than one line: {line!r}"
        assert "Traceback" not in line and not RAW_ERROR.match(line), f"an unchecked error reached the learner: {line}"


def press(explorer, button: widgets.Button, what: str) -> None:
    """Click `button` as the front-end does (its handlers, exceptions not swallowed) and wait for any run."""
    start = time.monotonic()
    for handler in button._click_handlers.callbacks:
        handler(button)
    if isinstance(explorer, RunPanel) and explorer._thread is not None:
        explorer._thread.join(PRESS_LIMIT_S)
        if explorer._thread.is_alive():  # long work must show progress and end on Stop
            assert explorer.message.value and not explorer.stop_button.disabled, f"{what}: no progress, no Stop"
            explorer.stop()
            explorer._thread.join(STOP_LIMIT_S)
            assert not explorer._thread.is_alive(), f"{what}: still running {STOP_LIMIT_S:.0f} s after Stop"
    else:
        assert time.monotonic() - start < PRESS_LIMIT_S, f"{what}: blocked {time.monotonic() - start:.0f} s"
    assert not button.disabled, f"{what}: the button stayed disabled"
    one_line(explorer)


def drive(explorer, *, press_each_value: bool = True, no_press: tuple[str, ...] = ()) -> int:
    """Every control through its extremes and every button pressed after each new state of the controls
    (a value clamped to one already tried is not pressed again); returns the number of presses.
    press_each_value=False presses once per control, after its extremes (for explorers that redraw on
    every change, whose buttons read no control); `no_press` names controls whose values are all valid,
    slow settings (real launches) that other tests run."""
    presses, pressed = 0, set()
    with Escapes() as escapes:
        for control in controls(explorer):
            original = control.value
            for i, value in enumerate(extremes(control)):
                what = f"{type(explorer).__name__}.{control.description or type(control).__name__}={value!r}"
                start = time.monotonic()
                control.value = value  # observers run now: an exception here escaped the handler
                assert time.monotonic() - start < PRESS_LIMIT_S, f"{what}: the redraw blocked"
                one_line(explorer)
                state = tuple(repr(c.value) for c in controls(explorer))
                last = i == len(extremes(control)) - 1
                if state in pressed or control.description in no_press or not (press_each_value or last):
                    continue
                pressed.add(state)
                for button in buttons(explorer):
                    press(explorer, button, f"{what}, {button.description}")
                    presses += 1
            control.value = original
        assert not escapes.errors, escapes.errors
    return presses


# ----------------------------------------------------------------------------- the explorers


def test_schedule_explorer():
    from labkit.ui import schedules as ui_
    drive(ui_.ScheduleExplorer(schedule="cosine", epochs=4, steps_per_epoch=10))


def test_momentum_explorer():
    from labkit.ui import momentum as ui_
    explorer = ui_.MomentumExplorer(kappa=30, steps=60)
    drive(explorer, press_each_value=False)
    explorer.beta.value, explorer.kappa.value = 0.5, 1.0
    press(explorer, explorer.best_button, "best lr, β at κ = 1")  # sets β = 0 with Nesterov ticked
    assert not explorer.message.value.startswith("⚠"), explorer.message.value


def test_scale_explorer():
    from labkit.ui import amp as ui_
    drive(ui_.ScaleExplorer(torch.logspace(-30, -2, 50, base=2.0)))


def test_temperature_explorer():
    from labkit.ui import distillation as ui_
    logits = torch.tensor([[4.0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0], [0.0, 0, 5, 2, 0, 0, 0, 0, 0, 0]])
    drive(ui_.TemperatureExplorer(torch.zeros(2, 1, 28, 28), logits, torch.tensor([0, 2]), data.CLASS_NAMES))


def test_bit_width_explorer():
    from labkit.ui import quantization as ui_
    drive(ui_.BitWidthExplorer(torch.randn(16, 32), bits=4))


def test_sparsity_explorer(tiny_splits, trained):  # noqa: F811
    from labkit.techniques import pruning
    from labkit.ui import pruning as ui_
    curve = pruning.sparsity_curve(trained, tiny_splits, [0.0, 0.5, 0.9])
    drive(ui_.SparsityExplorer(trained, tiny_splits, curve, sparsity=0.5))


def test_search_explorer():
    from labkit.ui import hpo as ui_
    drive(ui_.SearchExplorer(_synthetic_comparison(), method="random"))


def test_batch_explorer():
    from labkit.ui import gpu as ui_
    explorer = ui_.BatchExplorer("cpu", min_run_time=0.01)
    assert drive(explorer) > 5
    # the largest batch took 50-100 s on a 2-core laptop: one step is timed first and a long point refused
    from labkit.techniques import gpu
    start = time.monotonic()
    with pytest.raises(LabkitError, match="would take about"):
        gpu.measure_batch("small_cnn", 256, 1, "cpu", budget_s=0.001)
    assert time.monotonic() - start < PRESS_LIMIT_S


def test_pipeline_explorer():
    from labkit.techniques import dataloading as dl
    from labkit.ui import dataloading as ui_
    rng = np.random.default_rng(0)
    source = dl.make_source(rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), rng.integers(0, 4, 64), 0.5, 0.25)
    explorer = ui_.PipelineExplorer(source, steps=2, warmup_steps=1, device="cpu")
    drive(explorer)
    explorer.read_latency_ms.value = 1000.0  # a second per image: refused at once, not 15–40 silent minutes
    start = time.monotonic()
    assert explorer.run(echo=False) is None and time.monotonic() - start < 5
    assert "read_latency_ms=1000.0" in explorer.message.value
    explorer.read_latency_ms.value, explorer.batch_size.value = 100.0, 128  # allowed alone, too slow together
    assert explorer.run(echo=False) is None and "would wait about" in explorer.message.value
    explorer.read_latency_ms.value = 0.0
    explorer.batch_size.value = 500  # more than the 64 images: the rate counts the images really loaded
    times = explorer.run(echo=False)
    assert sum(times.samples) == 2 * 64 and times.samples_per_s < 2 * 64 / sum(times.compute_s)


def test_transfer_explorer(tiny_source, tiny_target):  # noqa: F811
    from labkit.ui import transfer as ui_
    drive(ui_.TransferExplorer(tiny_target, dataclasses.replace(TRANSFER_TINY, steps=2)))


def test_comm_explorer():
    from labkit.techniques import ddp
    from labkit.ui import ddp as ui_
    cfg = ddp.DDPConfig(batch_per_rank=8, warmup_steps=1, window_steps=2, windows=1)
    assert drive(ui_.CommExplorer(cfg), no_press=("bucket MB",)) >= 4


def test_speedrun_panel(tiny_inputs):  # noqa: F811
    from labkit.ui import speedrun as ui_
    splits, source = tiny_inputs
    drive(ui_.SpeedrunPanel(dataclasses.replace(SPEEDRUN_TINY, epochs=1), splits, source, device="cpu"))


def test_comparison_panel(tiny_splits):
    def variant(callbacks):
        env.seed_everything(0)
        return train.fit(models.MLP(width=8, num_classes=4), tiny_splits, epochs=1, batch_size=64,
                         callbacks=callbacks, progress=False)
    drive(ui.ComparisonPanel({"a": variant, "b": variant}, title="t"))


# ----------------------------------------------------------------------------- numbers that must not lie


def test_a_diverging_rate_is_reported_as_diverged(tiny_splits):
    def variant(lr):
        return lambda callbacks: train.fit(models.MLP(width=8, num_classes=4), tiny_splits, epochs=3, lr=lr,
                                           batch_size=64, callbacks=callbacks, progress=False)
    panel = ui.ComparisonPanel({"sane": variant(0.05), "huge": variant(1e6)}, title="rates")
    card = panel.run(echo=False)
    assert card.rows[1].get("diverged") and not card.rows[0].get("diverged")
    assert "diverged" in panel.message.value and "huge" in panel.message.value
    huge = panel._histories["huge"]  # stopped after the first epoch whose loss became inf/NaN
    assert len(huge) < 6 and not math.isfinite(huge["train_loss"].iloc[-1])
    assert huge["train_loss"].iloc[:-1].map(math.isfinite).all()


def test_an_infinite_rate_is_refused(tiny_splits):
    with pytest.raises(LabkitError, match="lr=inf"):
        train.fit(models.MLP(width=8, num_classes=4), tiny_splits, epochs=1, lr=math.inf, progress=False)


def test_the_transfer_explorer_says_when_training_diverged(tiny_source, tiny_target, monkeypatch):  # noqa: F811
    from labkit.techniques import transfer
    from labkit.ui import transfer as ui_
    fine_tune = transfer.RUNNERS["fine-tune"]

    def blown_up(*args):  # what a rate far too high leaves: weights of inf/NaN
        model, seconds = fine_tune(*args)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(math.nan)
        return model, seconds

    monkeypatch.setitem(transfer.RUNNERS, "fine-tune", blown_up)
    explorer = ui_.TransferExplorer(tiny_target, dataclasses.replace(TRANSFER_TINY, steps=2))
    explorer.run()
    assert "fine-tune diverged" in explorer.summary and "scratch diverged" not in explorer.summary
    assert "\n" not in explorer.summary
