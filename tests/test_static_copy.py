"""What a widget leaves for views without a kernel (its static copy), and the progress line that replaces
tqdm's widget bar. The executed-notebook side is tests/test_static_views.py."""

from __future__ import annotations

import re

import ipywidgets as widgets

from labkit.progress import ProgressLine
from labkit.ui import ComparisonPanel, base, plot_curves
from labkit.ui.schedules import ScheduleExplorer


def test_static_copy_holds_the_figure_with_alt_text_and_the_summary():
    explorer = ScheduleExplorer(schedule="cosine", lr=0.1, epochs=3, steps_per_epoch=10)
    copy = explorer.static_copy()
    page = copy["text/html"]
    assert page.startswith("<div class='labkit-static'>")
    assert page.count("<img src='data:image/png;base64,") == 1
    alt = re.search(r"alt='([^']*)'", page).group(1)
    assert "learning rate" in alt and len(alt.split()) >= 6
    assert explorer.summary in copy["text/plain"] and "[figure: " in copy["text/plain"]


def test_static_copy_follows_every_change_and_keeps_the_figure_after_an_error():
    explorer = ScheduleExplorer(schedule="cosine", lr=0.1, epochs=3, steps_per_epoch=10)
    before = explorer.static_copy()["text/html"]
    explorer.lr.value = 0.2
    after = explorer.static_copy()["text/html"]
    assert after != before and "first lr=0.2" in after
    explorer.steps_per_epoch.value = 0  # refused: one line, and what was drawn before is kept
    failed = explorer.static_copy()
    assert "⚠" in failed["text/plain"] and "<img" in failed["text/html"]


def test_a_panel_copy_carries_its_result_card():
    panel = ComparisonPanel({"a": lambda cbs: {"accuracy": 0.5, "train_time_s": 1.0},
                             "b": lambda cbs: {"accuracy": 0.6, "train_time_s": 2.0}})
    panel.run(echo=False)
    page = panel.static_copy()["text/html"]
    assert "<table" in page and ">b<" in page


def test_the_copies_of_a_displayed_widget_are_rewritten():
    class Handle:
        def __init__(self):
            self.shown = []

        def update(self, bundle, raw):
            self.shown.append(bundle)

    explorer = ScheduleExplorer(schedule="cosine", lr=0.1, epochs=3, steps_per_epoch=10)
    handle = Handle()
    explorer._copies.append(handle)
    explorer.lr.value = 0.3
    assert handle.shown and "first lr=0.3" in handle.shown[-1]["text/plain"]


def test_the_hiding_style_lives_only_in_the_live_widget():
    """The copy itself carries no style: a static view shows it; only a rendered widget hides it."""
    explorer = ScheduleExplorer()
    assert "<style" not in explorer.static_copy()["text/html"]
    assert ".labkit-live" in base.HIDE_STATIC_COPY and ".labkit-static" in base.HIDE_STATIC_COPY
    assert "labkit-widget" in explorer.widget._dom_classes


def test_draw_keeps_alt_text_for_every_image_slot():
    explorer = base.Explorer()
    image = widgets.Image(format="png")
    explorer.widget.children = [image]
    explorer.draw(image, plot_curves({}, None))
    assert image.value and "training loss" in explorer.static_copy()["text/html"]


def test_progress_line_outside_a_notebook_is_a_terminal_bar(capsys):
    line = ProgressLine(10, "training", "batches")
    for _ in range(10):
        line.update()
    line.set_postfix(loss="0.5")
    line.close()
    assert line._bar is not None and line._handle is None
    assert "training" in capsys.readouterr().err


def test_progress_line_final_text_says_what_was_done_or_where_it_stopped():
    line = ProgressLine(8, "training", "batches", enabled=False)
    line.update(8)
    line.set_postfix(**{"loss": "0.412", "test accuracy": "81.0 %"})
    assert re.fullmatch(r"training: 8 of 8 batches in \d+\.\d s \(loss 0\.412, test accuracy 81\.0 %\)",
                        line.text(final=True))
    stopped = ProgressLine(8, "training", "batches", enabled=False)
    stopped.update(3)
    assert stopped.text(final=True).startswith("training: stopped at 3 of 8 batches")
