"""Checks for notebooks/01_gpu.ipynb: arithmetic intensity of a layer, copy time, when compiling pays.

Each check tries several inputs (no constant passes) and names the mistakes learners make with units and
with what moves through memory."""

from __future__ import annotations

import math
from typing import Callable

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import gpu as answers

__all__ = ["linear_intensity", "copy_ms", "break_even", "hint", "solution"]


def _number(result: object, what: str) -> float:
    try:
        return float(result)
    except (TypeError, ValueError):
        raise Hint(f"got {result!r}: return one number, {what}.") from None


def _close(value: float, expected: float, rel: float = 1e-6) -> bool:
    return math.isclose(value, expected, rel_tol=rel)


def _intensity(b: int, d: int, nbytes: float, *, flops_per_mac: int = 2, reads_x: bool = True,
               reads_w: bool = True, writes_y: bool = True) -> float:
    """FLOPs per byte of a d→d linear layer on b examples, with knobs for the mistakes recognised."""
    moved = (b * d if reads_x else 0) + (d * d if reads_w else 0) + (b * d if writes_y else 0)
    return flops_per_mac * b * d * d / (moved * nbytes)


# (batch, d, bytes per element): batch 1 and 256 as in the text, fp16 and int8 so the bytes argument counts
LAYERS = [(1, 1024, 4), (256, 1024, 4), (64, 512, 2), (8, 4096, 1), (32, 768, 2)]


@exercise("Exercise 1 (intensity of a linear layer)", hints=[
    "intensity is work divided by traffic. Count the floating-point operations the layer does, count every "
    "byte it must read or write, and divide one by the other.",
    "each weight meets each example once, in a multiply and an add: two operations. Traffic is three "
    "tensors: the input and the weights are read, the output is written.",
    "count the traffic in numbers first: the input and the output each hold batch times width numbers, the "
    "weights width times width. Then turn numbers into bytes with the size of one element.",
])
def linear_intensity(fn: Callable) -> None:
    """`fn(batch, d, bytes_per_element)`: FLOPs per byte of a d→d linear layer on a batch
    (x: batch×d read, W: d×d read, y: batch×d written; 2·batch·d² FLOPs)."""
    for b, d, nbytes in LAYERS:
        got = _number(ask(fn, b, d, nbytes), "FLOPs per byte")
        want = _intensity(b, d, nbytes)
        if _close(got, want):
            continue
        case = f"for batch {b}, d = {d}, {nbytes} bytes per element you returned {got:g} (expected about {want:.5g})"
        mistakes = [
            (_intensity(b, d, 1), "you divided by numbers, not bytes: multiply the count by bytes_per_element."),
            (_intensity(b, d, 4), "the result is right for fp32 only: use the bytes_per_element argument."),
            (_intensity(b, d, nbytes, flops_per_mac=1), "a multiply-add is two floating-point operations, "
             "not one."),
            (_intensity(b, d, nbytes, reads_x=False, writes_y=False), "you count only the weights: the input "
             "is read and the output is written too."),
            (_intensity(b, d, nbytes, reads_w=False), "you count only the activations: the d×d weight matrix "
             "is read too."),
            (_intensity(b, d, nbytes, writes_y=False), "the output is written to memory too: count its bytes."),
            (_intensity(b, d, nbytes, reads_x=False), "the input is read from memory too: count its bytes."),
            (1 / want, "that is bytes per FLOP: divide the FLOPs by the bytes, not the other way round."),
        ]
        for value, message in mistakes:
            if _close(got, value):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}; it must change with every argument.")


# (megabytes, GB/s): one PCIe 4.0 link, the batch of the text, a slow link, NVLink
COPIES = [(100, 25), (154, 25), (8, 12), (1000, 900), (3, 0.5)]


@exercise("Exercise 2 (how long a copy takes)", hints=[
    "time is the amount moved divided by the rate at which it moves. Watch the units: the amount is in "
    "megabytes, the rate in gigabytes per second, the answer in milliseconds.",
    "a megabyte here is a million bytes and a gigabyte a billion: the decimal prefixes used for link speeds, "
    "not the powers of two used for memory sizes.",
    "divide the bytes by the bytes per second to get seconds, then multiply by a thousand to get milliseconds.",
])
def copy_ms(fn: Callable) -> None:
    """`fn(megabytes, gb_per_s)`: milliseconds to move `megabytes` (10^6 bytes) over a link of `gb_per_s`
    (10^9 B/s)."""
    for mb, gbs in COPIES:
        got = _number(ask(fn, mb, gbs), "the milliseconds")
        want = 1e3 * mb * 1e6 / (gbs * 1e9)
        if _close(got, want):
            continue
        case = f"for {mb} MB at {gbs} GB/s you returned {got:g}"
        mistakes = [
            (want / 1e3, "that is seconds: the question asks for milliseconds."),
            (want * 1e3, "that is microseconds, or the megabytes were not converted: MB is a million bytes and "
             "GB/s a billion bytes per second, and a second has a thousand milliseconds."),
            (want / 1e6, "check the units: MB is a million bytes and GB/s a billion bytes per second."),
            (1e3 * mb * 2 ** 20 / (gbs * 2 ** 30), "that uses binary units (MiB and GiB): link speeds and "
             "this exercise use decimal ones, a megabyte is a million bytes."),
            (1e3 * gbs / mb, "that is upside down: divide the amount by the rate."),
            (gbs / mb, "that is upside down: divide the amount by the rate."),
            (mb * gbs, "you multiplied: time is the amount divided by the rate."),
        ]
        for value, message in mistakes:
            if _close(got, value):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}, expected {want:g} ms; it must change with both arguments.")


# (compile s, eager ms, compiled ms): pays after 5000, 7000 and 600000 calls; then never (slower, equal)
PAYS = [(20.0, 10.0, 6.0), (3.5, 2.0, 1.5), (60.0, 8.0, 7.9)]
NEVER = [(20.0, 10.0, 12.0), (5.0, 4.0, 4.0)]


@exercise("Exercise 3 (when does compiling pay?)", hints=[
    "compiling is paid once, up front; every later call gives a little of it back. How much does one call "
    "give back, and how many such savings add up to the compile time? Mind the units.",
    "one call saves the difference between the eager and the compiled time, not the whole eager time. The "
    "compile time is in seconds, the call times in milliseconds: bring them to one unit.",
    "when the compiled call is not faster, nothing is ever saved and compiling never pays: return infinity "
    "from the math module for that case, before you divide.",
])
def break_even(fn: Callable) -> None:
    """`fn(compile_s, eager_ms, compiled_ms)`: calls after which compiling has paid off; math.inf if never.
    Rounding up to whole calls is accepted."""
    for compile_s, eager, compiled in PAYS:
        got = _number(ask(fn, compile_s, eager, compiled), "the number of calls")
        want = 1e3 * compile_s / (eager - compiled)
        if _close(got, want, 1e-6) or got == math.ceil(want - 1e-9):
            continue
        case = f"for {compile_s:g} s of compiling, {eager:g} ms eager and {compiled:g} ms compiled you returned {got:g}"
        mistakes = [
            (want / 1e3, "the compile time is in seconds but the call times are in milliseconds."),
            (want * 1e3, "the units are converted the wrong way: a second is a thousand milliseconds."),
            (1e3 * compile_s / eager, "a call saves the difference between eager and compiled, not the eager "
             "time."),
            (compile_s / eager, "a call saves the difference between eager and compiled, not the eager time; "
             "and mind the units."),
            (1e3 * compile_s / compiled, "a call saves the difference between eager and compiled, not the "
             "compiled time."),
            (-want, "the saving has the wrong sign: eager minus compiled is what one call saves."),
        ]
        for value, message in mistakes:
            if _close(got, value, 1e-6) or got == math.ceil(value - 1e-9):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}; expected about {want:,.0f} calls.")
    for compile_s, eager, compiled in NEVER:
        case = f"for {compile_s:g} s of compiling, {eager:g} ms eager and {compiled:g} ms compiled"
        try:
            got = ask(fn, compile_s, eager, compiled)
        except Hint as error:
            if "ZeroDivisionError" in str(error):
                raise Hint(f"{case} your code divided by zero: when both call times are equal nothing is saved, "
                           "so compiling never pays: return math.inf before dividing.") from None
            raise
        got = _number(got, "the number of calls, or math.inf")
        if math.isinf(got) and got > 0:
            continue
        if got < 0:
            raise Hint(f"{case} you returned {got:g}, a negative count: the compiled version is slower, so it "
                       "never pays: return math.inf.")
        raise Hint(f"{case} you returned {got:g}: the compiled version is not faster, so it never pays: "
                   "return math.inf.")


hint, solution = helpers(__name__, answers)
