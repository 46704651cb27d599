import pytest

import ipywidgets as widgets
import torch

from labkit import LabkitError, env, models, train, ui
from labkit.ui import amp as amp_ui
from labkit.ui import schedules as schedules_ui
from labkit.ui.base import Explorer, error_line


def _variants(tiny_splits, epochs=2):
    def run(width):
        def variant(callbacks):
            env.seed_everything(0)
            return train.fit(models.MLP(width=width, num_classes=4), tiny_splits, epochs=epochs, batch_size=64,
                             callbacks=callbacks, progress=False)
        return variant
    return {"narrow": run(8), "wide": run(64)}


def test_run_returns_the_card_and_prints_it(tiny_splits, capsys):
    panel = ui.ComparisonPanel(_variants(tiny_splits), target_acc=0.5, title="widths")
    card = panel.run()
    assert card.variants == ["narrow", "wide"]
    assert card.value("wide", "time_to_target_s") > 0  # the panel's target is read from the history
    assert "widths" in capsys.readouterr().out
    assert bytes(panel.curves.value).startswith(b"\x89PNG") and "<table" in panel.table.value
    assert panel.progress.value == 2 and not panel.run_button.disabled


def test_baseline_is_always_measured(tiny_splits):
    panel = ui.ComparisonPanel(_variants(tiny_splits), baseline="narrow")
    assert panel.run(["wide"], echo=False).variants == ["narrow", "wide"]


def test_stop_keeps_finished_rows(tiny_splits):
    variants = _variants(tiny_splits, epochs=3)
    panel = ui.ComparisonPanel(variants)

    def stopping(callbacks):
        panel.stop()  # as if the learner pressed Stop during this variant
        return variants["wide"](callbacks)

    panel.variants["wide"] = stopping
    card = panel.run(echo=False)
    assert card.variants == ["narrow", "wide"]
    assert card.rows[0]["interrupted"] is False and card.rows[1]["interrupted"] is True
    assert "stopped" in panel.message.value


@pytest.mark.parametrize("error", [LabkitError("lr must be greater than 0"),
                                   ZeroDivisionError("lr must be greater than 0\nsecond line")])
def test_button_runs_in_the_background_and_errors_reach_the_learner(tiny_splits, error):
    def broken(callbacks):
        raise error

    panel = ui.ComparisonPanel({**_variants(tiny_splits), "broken": broken})
    panel.run_button.click()
    card = panel.wait(60)
    assert card.variants == ["narrow", "wide"]  # finished rows survive the failure
    assert "<table" in panel.table.value and "narrow" in panel.table.value
    assert panel.message.value.startswith("⚠") and "lr must be greater than 0" in panel.message.value
    assert "second line" not in panel.message.value
    assert not panel.run_button.disabled and panel.stop_button.disabled  # usable again


def test_bad_panel_input():
    with pytest.raises(LabkitError):
        ui.ComparisonPanel({})
    panel = ui.ComparisonPanel({"a": lambda cb: {"accuracy": 1.0}}, baseline="a")
    with pytest.raises(LabkitError, match="Unknown variant"):
        panel.run(["b"])
    for box in panel.checkboxes.values():
        box.value = False
    with pytest.raises(LabkitError, match="No variant is ticked"):
        panel.run()


def test_text_summary():
    assert ui.text_summary("explorer", {"bits": 4, "error": 0.01234}) == "explorer: bits=4, error=0.01234"


# --- the explorer base: every handler's error is one escaped line, the widget stays usable -------------------

def test_error_line_is_one_line_with_the_type_unless_labkit():
    assert error_line(LabkitError("bits must be 1 to 8")) == "⚠ bits must be 1 to 8"
    assert error_line(ZeroDivisionError("division by zero\nmore")) == "⚠ ZeroDivisionError: division by zero"
    assert error_line(KeyError()) == "⚠ KeyError"


def test_a_non_labkit_error_in_a_slider_handler_is_one_escaped_line(monkeypatch):
    explorer = schedules_ui.ScheduleExplorer(schedule="cosine", epochs=4, steps_per_epoch=10)
    assert explorer.summary.startswith("cosine")

    def broken(*args, **kwargs):
        raise ValueError("<b>rate</b> & co\ntraceback line")

    monkeypatch.setattr(schedules_ui.schedules, "lr_trace", broken)
    explorer.epochs.value = 5  # the slider's observer runs the handler: nothing may escape it
    assert explorer.summary == "⚠ ValueError: <b>rate</b> & co"
    assert explorer.message.value == "⚠ ValueError: &lt;b&gt;rate&lt;/b&gt; &amp; co"
    assert explorer.text.value == ""  # no stale summary beside the error
    monkeypatch.undo()
    explorer.epochs.value = 6  # still usable
    assert explorer.summary.startswith("cosine") and explorer.message.value == ""


def test_a_non_labkit_error_in_an_update_method_is_returned_and_printed(monkeypatch, capsys):
    explorer = amp_ui.ScaleExplorer(torch.logspace(-30, -2, 50, base=2.0))
    monkeypatch.setattr(amp_ui.amp, "fp16_fate", lambda *a: 1 / 0)
    assert explorer.show(8) is None
    assert explorer.message.value == "⚠ ZeroDivisionError: division by zero"
    assert "⚠ ZeroDivisionError" in capsys.readouterr().out


def test_a_failing_handler_clears_its_status_and_reenables_its_button():
    explorer = Explorer()
    explorer.buttons = [widgets.Button()]

    def work():
        assert explorer.buttons[0].disabled and explorer.message.value == "measuring …"
        raise RuntimeError("<script>")

    assert explorer.attempt(work, status="measuring …") is None
    assert explorer.message.value == "⚠ RuntimeError: &lt;script&gt;" and not explorer.buttons[0].disabled


def test_the_comm_explorer_runs_in_the_background_and_keeps_its_rows_after_a_failure(monkeypatch):
    from labkit.ui import ddp as ddp_ui

    row = {"ranks": 2, "bucket_cap_mb": 25.0, "accum": 1, "images_per_s": 900.0, "images_per_s_no_comm": 1000.0,
           "comm_fraction": 0.1}
    monkeypatch.setattr(ddp_ui.ddp, "measure_comm", lambda *a, **k: row)
    explorer = ddp_ui.CommExplorer()
    explorer.run_button.click()
    explorer.wait(30)
    assert explorer.runs == [row] and "images_per_s=900" in explorer.summary

    def launch_failed(*args, **kwargs):
        raise OSError("torchrun <exited> with code 1\nrank 0 traceback …")

    monkeypatch.setattr(ddp_ui.ddp, "measure_comm", launch_failed)
    explorer.run_button.click()
    explorer.wait(30)
    assert explorer.runs == [row]  # the finished run is kept
    assert explorer.message.value == "⚠ OSError: torchrun &lt;exited&gt; with code 1"
    assert not explorer.run_button.disabled and explorer.stop_button.disabled
