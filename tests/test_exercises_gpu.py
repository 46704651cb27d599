"""The exercise catalogue of notebook 01_gpu: the answer key passes, the shipped stub is "not attempted",
a forgotten `return` is named, and each mistake learners make (written as their code) gets a Hint naming it."""

import math

import pytest

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint
from labkit.exercises import gpu as check
from labkit.exercises.answers import gpu as key

# ---------------------------------------------------------------- exercise 1: intensity of a linear layer


def intensity_stub(batch, d, bytes_per_element):
    # YOUR CODE
    ...


def intensity_forgot_return(batch, d, bytes_per_element):
    flops = 2 * batch * d * d
    flops / ((2 * batch * d + d * d) * bytes_per_element)


def intensity_elements(batch, d, bytes_per_element):
    return 2 * batch * d * d / (2 * batch * d + d * d)


def intensity_fp32_only(batch, d, bytes_per_element):
    return 2 * batch * d * d / ((2 * batch * d + d * d) * 4)


def intensity_one_flop(batch, d, bytes_per_element):
    return batch * d * d / ((2 * batch * d + d * d) * bytes_per_element)


def intensity_weights_only(batch, d, bytes_per_element):
    return 2 * batch * d * d / (d * d * bytes_per_element)


def intensity_activations_only(batch, d, bytes_per_element):
    return 2 * batch * d * d / (2 * batch * d * bytes_per_element)


def intensity_no_output(batch, d, bytes_per_element):
    return 2 * batch * d * d / ((batch * d + d * d) * bytes_per_element)


def intensity_upside_down(batch, d, bytes_per_element):
    return (2 * batch * d + d * d) * bytes_per_element / (2 * batch * d * d)


def intensity_hard_coded(batch, d, bytes_per_element):
    return 0.4995


# ---------------------------------------------------------------- exercise 2: how long a copy takes

def copy_stub(megabytes, gb_per_s):
    # YOUR CODE
    ...


def copy_forgot_return(megabytes, gb_per_s):
    megabytes * 1e6 / (gb_per_s * 1e9) * 1e3


def copy_seconds(megabytes, gb_per_s):
    return megabytes * 1e6 / (gb_per_s * 1e9)


def copy_prefixes_ignored(megabytes, gb_per_s):
    return megabytes / gb_per_s * 1000


def copy_binary_units(megabytes, gb_per_s):
    return megabytes * 2**20 / (gb_per_s * 2**30) * 1000


def copy_upside_down(megabytes, gb_per_s):
    return gb_per_s / megabytes


def copy_multiplied(megabytes, gb_per_s):
    return megabytes * gb_per_s


def copy_hard_coded(megabytes, gb_per_s):
    return 4.0


# ---------------------------------------------------------------- exercise 3: when does compiling pay?

def calls_stub(compile_s, eager_ms, compiled_ms):
    # YOUR CODE
    ...


def calls_forgot_return(compile_s, eager_ms, compiled_ms):
    if eager_ms <= compiled_ms:
        return math.inf
    compile_s * 1000 / (eager_ms - compiled_ms)


def calls_units(compile_s, eager_ms, compiled_ms):
    if eager_ms <= compiled_ms:
        return math.inf
    return compile_s / (eager_ms - compiled_ms)


def calls_eager_time(compile_s, eager_ms, compiled_ms):
    if eager_ms <= compiled_ms:
        return math.inf
    return compile_s * 1000 / eager_ms


def calls_no_never(compile_s, eager_ms, compiled_ms):
    return compile_s * 1000 / (eager_ms - compiled_ms)


def calls_only_slower_is_never(compile_s, eager_ms, compiled_ms):
    if eager_ms < compiled_ms:
        return math.inf
    return compile_s * 1000 / (eager_ms - compiled_ms)


def calls_never_is_minus_one(compile_s, eager_ms, compiled_ms):
    if eager_ms <= compiled_ms:
        return -1
    return compile_s * 1000 / (eager_ms - compiled_ms)


def calls_wrong_sign(compile_s, eager_ms, compiled_ms):
    if eager_ms <= compiled_ms:
        return math.inf
    return compile_s * 1000 / (compiled_ms - eager_ms)


def calls_hard_coded(compile_s, eager_ms, compiled_ms):
    return 5000


def calls_rounded_up(compile_s, eager_ms, compiled_ms):
    if eager_ms <= compiled_ms:
        return math.inf
    return math.ceil(compile_s * 1000 / (eager_ms - compiled_ms))


CATALOGUE = {
    "linear_intensity": (check.linear_intensity, key.intensity, intensity_stub, intensity_forgot_return, {
        "elements, not bytes": (intensity_elements, "not bytes"),
        "fp32 only": (intensity_fp32_only, "fp32 only"),
        "one FLOP per multiply-add": (intensity_one_flop, "two floating-point"),
        "weights only": (intensity_weights_only, "only the weights"),
        "activations only": (intensity_activations_only, "only the activations"),
        "output forgotten": (intensity_no_output, "output is written"),
        "bytes per FLOP": (intensity_upside_down, "bytes per FLOP"),
        "hard-coded": (intensity_hard_coded, "every argument"),
    }),
    "copy_ms": (check.copy_ms, key.copy_time, copy_stub, copy_forgot_return, {
        "seconds": (copy_seconds, "seconds"),
        "prefixes ignored": (copy_prefixes_ignored, "a million bytes"),
        "binary units": (copy_binary_units, "binary"),
        "upside down": (copy_upside_down, "upside down"),
        "multiplied": (copy_multiplied, "multiplied"),
        "hard-coded": (copy_hard_coded, "both arguments"),
    }),
    "break_even": (check.break_even, key.calls_to_break_even, calls_stub, calls_forgot_return, {
        "seconds vs milliseconds": (calls_units, "milliseconds"),
        "divides by the eager time": (calls_eager_time, "not the eager time"),
        "no never case": (calls_no_never, "negative"),
        "equal times divide by zero": (calls_only_slower_is_never, "divided by zero"),
        "never as -1": (calls_never_is_minus_one, "never pays"),
        "wrong sign": (calls_wrong_sign, "wrong sign"),
        "hard-coded": (calls_hard_coded, "expected about"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


def test_rounding_up_to_whole_calls_is_accepted():
    assert "passed" in check.break_even(calls_rounded_up)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("gpu", "copy_ms"))
    check.copy_ms(copy_stub)
    assert "try it first" in check.solution("copy_ms")
    with pytest.raises(Hint):
        check.copy_ms(copy_seconds)
    assert "def copy_time(megabytes, gb_per_s):" in check.solution("copy_ms")
