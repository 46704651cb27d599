"""What every widget shares: one status-or-error line, the plain-text summary, and Run / Stop in a thread.

`Explorer` is the base of every explorer: a handler's work runs through `attempt(...)`, so ANY
exception becomes one escaped line '⚠ …' in the widget and the widget stays usable.
`RunPanel` adds what slow work needs: Run starts it in a daemon thread, Stop sets a flag the
training callbacks read, and whatever finished before an error or a Stop is kept.

A widget is live only where a kernel runs it. So that an exported or web-rendered notebook (GitHub's
view, an HTML export, Colab without custom widgets) still shows what it found, every displayed widget
leaves a *static copy* below it: an ordinary output with its last figures (with alt text), its result
card and its summary, rewritten each time a result or an error is shown. Where the widget is live, a
style inside the widget hides the copy, so a learner in JupyterLab sees each figure once.
"""

from __future__ import annotations

import html
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import ipywidgets as widgets
from IPython.display import display

from labkit.errors import LabkitError
from labkit.ui.style import FigureImage, show

T = TypeVar("T")
ERROR_COLOR = "#b00"
# Inside the live widget: hide the static copies in the same output area (JupyterLab, Notebook 7, Voila,
# classic Notebook). A view that cannot run the widget has no such style, so it shows the copies.
HIDE_STATIC_COPY = ("<style>.jp-OutputArea:has(.labkit-live) .labkit-static,"
                    ".output:has(.labkit-live) .labkit-static{display:none}</style>")


def error_line(error: BaseException | str) -> str:
    """'⚠ ' and the first line of the message; errors other than LabkitError are named by their type."""
    text = str(error).strip()
    if isinstance(error, BaseException) and not isinstance(error, LabkitError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return "⚠ " + (text.splitlines() or ["unknown error"])[0]


class Explorer:
    """The shared shape of an explorer: `widget` (a VBox the subclass fills), `message` (one status or
    error line), `text` (the plain-text summary, shown) and `summary` (that text, for code and tests)."""

    def __init__(self, *, framed: bool = False):
        self.summary = ""
        self.message = widgets.HTML()
        self.text = widgets.HTML()
        self.buttons: list[widgets.Button] = []  # disabled while a handler's work runs
        frame = widgets.Layout(border="1px solid #ddd", padding="6px") if framed else widgets.Layout()
        self.widget = widgets.VBox(layout=frame)
        self.message.add_class("labkit-status")  # stable handles for the browser test and for styling
        self.text.add_class("labkit-summary")
        self.widget.add_class("labkit-widget")
        self.figures: dict[int, FigureImage] = {}  # the figure each image widget shows, by id(widget)
        self._copies: list = []  # display handles of the static copies (one per display)

    def _ipython_display_(self) -> None:
        live = widgets.HTML(HIDE_STATIC_COPY, layout=widgets.Layout(display="none"))
        live.add_class("labkit-live")
        shown = widgets.VBox([live, self.widget])
        name = type(self).__name__
        display({"text/plain": f"[{name}: an interactive widget; it needs a running kernel. "
                               "Its last result is copied below.]",
                 "application/vnd.jupyter.widget-view+json": {
                     "version_major": 2, "version_minor": 0, "model_id": shown.model_id}}, raw=True)
        self._copies.append(display(self.static_copy(), raw=True, display_id=True))
        if self.summary:
            print(self.summary)

    # --- the static copy ---
    def draw(self, image: widgets.Image, fig) -> None:
        """Show a matplotlib figure in one of the widget's image slots (and keep it, with its alt text,
        for the static copy)."""
        shown = show(fig)
        self.figures[id(image)] = shown
        image.value = shown.png
        if image.has_trait("tooltip"):  # ipywidgets 8: the alt text as the image's title, for screen readers too
            image.tooltip = shown.alt

    def static_copy(self) -> dict:
        """The widget's last result as ordinary output: figures (with alt text), the result card, the summary."""
        figures = [self.figures[id(w)] for w in _descendants(self.widget)
                   if isinstance(w, widgets.Image) and id(w) in self.figures and w.value]
        cards = [w.value for w in _descendants(self.widget)
                 if isinstance(w, widgets.HTML) and "labkit-card" in w._dom_classes and w.value]
        parts = [f.html() for f in figures]
        parts += cards
        if self.summary:
            parts.append(f"<pre style='margin:2px 0'>{html.escape(self.summary)}</pre>")
        text = "\n".join([f"[figure: {f.alt}]" for f in figures] + ([self.summary] if self.summary else []))
        return {"text/plain": text, "text/html": f"<div class='labkit-static'>{''.join(parts)}</div>"}

    def _update_copies(self) -> None:
        """Rewrite every static copy of this widget with its current result."""
        if self._copies:
            copy = self.static_copy()
            for handle in self._copies:
                handle.update(copy, raw=True)

    def show_status(self, status: str) -> None:
        """One line of progress ('measuring …'); the next summary or error replaces it."""
        self.message.style.text_color = None
        self.message.value = html.escape(status)

    def show_summary(self, summary: str, *, echo: bool = False) -> str:
        """Keep and show the plain-text summary (printed too with `echo`); clears the status line."""
        self.summary = summary
        self.message.value = ""
        self.text.value = f"<pre style='margin:2px 0'>{html.escape(summary)}</pre>"
        self._update_copies()
        if echo:
            print(summary)
        return summary

    def show_error(self, error: BaseException | str, *, echo: bool = False) -> str:
        """Show the error as ONE escaped line '⚠ …' (printed too with `echo`); it is also the summary now."""
        self.summary = error_line(error)
        self.message.style.text_color = ERROR_COLOR
        self.message.value = html.escape(self.summary)
        self.text.value = ""
        self._update_copies()
        if echo:
            print(self.summary)
        return self.summary

    def attempt(self, work: Callable[[], T], *, status: str = "", echo: bool = False) -> T | None:
        """Run a handler's work with `status` shown and the buttons disabled; ANY exception becomes one
        line in the widget (printed too with `echo`) and None comes back, so the widget stays usable."""
        for button in self.buttons:
            button.disabled = True
        if status:
            self.show_status(status)
        try:
            return work()
        except Exception as error:  # a learner's widget must never end in a traceback
            self.show_error(error, echo=echo)
            return None
        finally:
            for button in self.buttons:
                button.disabled = False


class RunPanel(Explorer):
    """An explorer whose work is slow: the Run button calls `background_work` in a daemon thread, Stop
    sets the flag that `stop_requested()` reads (training callbacks return it), `wait()` joins the thread."""

    STOPPING = "stopping after this batch …"

    def __init__(self, *, framed: bool = True):
        super().__init__(framed=framed)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.locked: list[widgets.Widget] = []  # controls that may not change during a run (checkboxes …)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget.add_class("labkit-panel")

    def background_work(self) -> None:
        """What the Run button does (in the background thread)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start `background_work` in a daemon thread, unless a run is going; an exception becomes one line."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=lambda: self.attempt(self.background_work), daemon=True)
        self._thread.start()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around one run: the stop flag cleared, Run and the locked controls disabled, Stop enabled."""
        self._stop.clear()
        self._set_running(True)
        try:
            yield
        finally:
            self._set_running(False)

    def stop(self) -> None:
        """Ask the running work to stop (training callbacks see it after the current batch)."""
        self._stop.set()
        self.show_status(self.STOPPING)

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a run started by the Run button to finish."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        for control in self.locked:
            control.disabled = running


def _descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """The widget and every widget inside it, in display order."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _descendants(child)
    return found
