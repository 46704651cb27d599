"""labkit: measure, side by side on your own machine, what makes deep-learning training faster.

Importing the package is cheap (torch is imported by the submodules that need it), so
``import labkit`` is quick. Inside IPython, labkit's own errors are shown as one line.
"""

from labkit.errors import LabkitError

__all__ = ["LabkitError", "__version__"]
__version__ = "0.1.0"


def _show_labkit_errors_briefly() -> None:
    """In a notebook, print a LabkitError as one line instead of a deep traceback."""
    import sys

    if "IPython" not in sys.modules:  # not in a notebook or IPython shell: nothing to do (and no import cost)
        return
    shell = sys.modules["IPython"].get_ipython()
    if shell is None:
        return

    def _one_line(shell, etype, value, tb, tb_offset=None):  # noqa: ANN001 - IPython's signature
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])

    shell.set_custom_exc((LabkitError,), _one_line)


_show_labkit_errors_briefly()
