"""A progress line that reads the same in every view of a notebook.

A widget progress bar (tqdm's notebook bar) is a live object: a static view of the notebook (GitHub,
an HTML export, Colab without custom widgets) shows it frozen at 0 %. In a notebook this line is an
ordinary output updated in place, whose last text stays: "training: 400 of 400 batches in 12.3 s …".
In a terminal it is tqdm's bar on stderr, removed when done. In a kernel's background thread (a widget's
Run button) there is none: where its output would land is not defined, and the widget shows its progress.
"""

from __future__ import annotations

import html
import threading
import time

from tqdm import tqdm

REFRESH_S = 0.5  # a notebook output updated more often only costs messages


def in_kernel() -> bool:
    """True inside a Jupyter kernel (a notebook, Voila, JupyterLab's console)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return type(get_ipython()).__name__ == "ZMQInteractiveShell"


class ProgressLine:
    """`update(n)`, `set_postfix(loss=…)`, `close()`: the parts of tqdm's interface the training loop uses."""

    def __init__(self, total: int, desc: str = "training", unit: str = "batches", enabled: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.postfix = 0, ""
        self.start = self.last_shown = time.monotonic()
        self._bar: tqdm | None = None
        self._handle = None
        if not enabled:
            return
        if not in_kernel():
            self._bar = tqdm(total=total, desc=desc, unit=unit[:5], leave=False)
        elif threading.current_thread() is threading.main_thread():  # a widget's background run shows its own
            from IPython.display import display
            self._handle = display(self._bundle(), raw=True, display_id=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._handle is not None and time.monotonic() - self.last_shown >= REFRESH_S:
            self._show()

    def set_postfix(self, **values: object) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def close(self) -> None:
        """The final line: what was done and how long it took (a stopped run says where it stopped)."""
        if self._bar is not None:
            self._bar.close()
        elif self._handle is not None:
            self._show(final=True)

    def text(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self.start
        state = "stopped at " if final and self.done < self.total else ""
        line = f"{self.desc}: {state}{self.done} of {self.total} {self.unit} in {elapsed:.1f} s"
        return line + (f" ({self.postfix})" if self.postfix else "")

    def _bundle(self, final: bool = False) -> dict:
        text = self.text(final)
        bar = "" if final else f"<progress value='{self.done}' max='{max(self.total, 1)}'></progress> "
        return {"text/plain": text, "text/html": f"<div class='labkit-progress'>{bar}{html.escape(text)}</div>"}

    def _show(self, final: bool = False) -> None:
        self._handle.update(self._bundle(final), raw=True)
        self.last_shown = time.monotonic()
