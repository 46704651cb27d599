"""The exercise catalogue of notebook 07_pruning (labkit.exercises.pruning): per exercise, the answer key
passes, the shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake
learners really make (written as the code they write) gets a Hint that names it."""

import json
import math
from pathlib import Path

import torch

from exercise_catalogue import CatalogueTests
from labkit.exercises import pruning as check
from labkit.exercises.answers import pruning as key
from labkit.techniques import pruning

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_pruning.ipynb"


# ---------------------------------------------------------------- exercise 1: an N:M mask

def nm_stub(weight, n, m):
    # YOUR CODE
    ...


def nm_forgot_return(weight, n, m):
    groups = weight.abs().reshape(-1, m)
    keep = groups.topk(n, dim=1).indices
    torch.zeros_like(groups).scatter_(1, keep, 1.0).reshape(weight.shape)


def nm_signed(weight, n, m):
    groups = weight.reshape(-1, m)
    keep = groups.topk(n, dim=1).indices
    return torch.zeros_like(groups).scatter_(1, keep, 1.0).reshape(weight.shape)


def nm_inverted(weight, n, m):
    groups = weight.abs().reshape(-1, m)
    keep = groups.topk(n, dim=1).indices
    return torch.ones_like(groups).scatter_(1, keep, 0.0).reshape(weight.shape)


def nm_n_pruned(weight, n, m):
    groups = weight.abs().reshape(-1, m)
    prune = groups.topk(n, dim=1, largest=False).indices
    return torch.ones_like(groups).scatter_(1, prune, 0.0).reshape(weight.shape)


def nm_smallest(weight, n, m):
    groups = weight.abs().reshape(-1, m)
    keep = groups.topk(n, dim=1, largest=False).indices
    return torch.zeros_like(groups).scatter_(1, keep, 1.0).reshape(weight.shape)


def nm_whole_tensor(weight, n, m):
    return pruning.magnitude_mask(weight, 1 - n / m)


def nm_strided(weight, n, m):
    rows = weight.shape[0]
    groups = weight.abs().reshape(rows, m, -1).transpose(1, 2)  # every (cols/m)-th weight
    keep = groups.topk(n, dim=2).indices
    return torch.zeros_like(groups).scatter_(2, keep, 1.0).transpose(1, 2).reshape(weight.shape)


def nm_flat_shape(weight, n, m):
    groups = weight.abs().reshape(-1, m)
    keep = groups.topk(n, dim=1).indices
    return torch.zeros_like(groups).scatter_(1, keep, 1.0)


def nm_pruned_weights(weight, n, m):
    groups = weight.abs().reshape(-1, m)
    keep = groups.topk(n, dim=1).indices
    return weight * torch.zeros_like(groups).scatter_(1, keep, 1.0).reshape(weight.shape)


def nm_hard_coded(weight, n, m):
    return torch.tensor([[1.0, 1.0, 0.0, 0.0] * 2] * 4)


# ---------------------------------------------------------------- exercise 2: channels to keep

def ch_stub(conv_weight, keep):
    # YOUR CODE
    ...


def ch_forgot_return(conv_weight, keep):
    l1 = conv_weight.abs().sum(dim=(1, 2, 3))
    l1.topk(keep).indices.sort().values


def ch_signed(conv_weight, keep):
    return conv_weight.sum(dim=(1, 2, 3)).topk(keep).indices.sort().values


def ch_unsorted(conv_weight, keep):
    return conv_weight.abs().sum(dim=(1, 2, 3)).topk(keep).indices


def ch_smallest(conv_weight, keep):
    return conv_weight.abs().sum(dim=(1, 2, 3)).topk(keep, largest=False).indices.sort().values


def ch_l2(conv_weight, keep):
    return conv_weight.flatten(1).norm(dim=1).topk(keep).indices.sort().values


def ch_input_channels(conv_weight, keep):
    return conv_weight.abs().sum(dim=(0, 2, 3)).topk(keep).indices.sort().values


def ch_hard_coded(conv_weight, keep):
    return [1, 3]


# ---------------------------------------------------------------- exercise 3: the size of shared weights

def sb_stub(n_weights, k):
    # YOUR CODE
    ...


def sb_forgot_return(n_weights, k):
    bits = math.ceil(math.log2(k))
    math.ceil(n_weights * bits / 8) + 4 * k


def sb_fractional_bits(n_weights, k):
    return math.ceil(n_weights * math.log2(k) / 8) + 4 * k


def sb_int_of_log(n_weights, k):
    return math.ceil(n_weights * int(math.log2(k)) / 8) + 4 * k


def sb_bits_not_bytes(n_weights, k):
    return n_weights * math.ceil(math.log2(k)) + 4 * k


def sb_no_codebook(n_weights, k):
    return math.ceil(n_weights * math.ceil(math.log2(k)) / 8)


def sb_one_byte_codebook(n_weights, k):
    return math.ceil(n_weights * math.ceil(math.log2(k)) / 8) + k


def sb_byte_per_code(n_weights, k):
    return n_weights + 4 * k


def sb_integer_division(n_weights, k):
    return n_weights * math.ceil(math.log2(k)) // 8 + 4 * k


def sb_dense(n_weights, k):
    return 4 * n_weights


def sb_hard_coded(n_weights, k):
    return 564


CATALOGUE = {
    "n_m_mask": (check.n_m_mask, key.my_n_m_mask, nm_stub, nm_forgot_return, {
        "signed value": (nm_signed, "magnitude"),
        "inverted mask": (nm_inverted, "inverted"),
        "n pruned instead of kept": (nm_n_pruned, "not the number it prunes"),
        "smallest kept": (nm_smallest, "smallest"),
        "whole tensor ranked": (nm_whole_tensor, "whole tensor"),
        "strided groups": (nm_strided, "strided"),
        "flat shape": (nm_flat_shape, "weight's shape"),
        "pruned weights, not a mask": (nm_pruned_weights, "not the pruned weights"),
        "hard-coded": (nm_hard_coded, "shape"),
    }),
    "channels_to_keep": (check.channels_to_keep, key.my_channels_to_keep, ch_stub, ch_forgot_return, {
        "signed sum": (ch_signed, "absolute"),
        "not sorted": (ch_unsorted, "increasing order"),
        "smallest kept": (ch_smallest, "smallest"),
        "L2 norm": (ch_l2, "L1"),
        "input channels": (ch_input_channels, "input channels"),
        "hard-coded": (ch_hard_coded, "exactly 3"),
    }),
    "shared_bytes": (check.shared_bytes, key.my_shared_bytes, sb_stub, sb_forgot_return, {
        "fractional bits": (sb_fractional_bits, "whole number of bits"),
        "log rounded down": (sb_int_of_log, "round up"),
        "bits, not bytes": (sb_bits_not_bytes, "in bits"),
        "codebook forgotten": (sb_no_codebook, "codebook is missing"),
        "codebook of bytes": (sb_one_byte_codebook, "four bytes"),
        "a byte per code": (sb_byte_per_code, "whole byte per code"),
        "integer division": (sb_integer_division, "rounded down"),
        "dense size": (sb_dense, "dense fp32"),
        "hard-coded": (sb_hard_coded, "bits per code"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


def test_the_n_m_mask_on_a_row_checkable_by_hand():
    w = torch.tensor([[0.1, -0.9, 0.5, 0.2, -0.3, 0.8, -0.7, 0.05]])
    assert key.my_n_m_mask(w, 2, 4).tolist() == [[0, 1, 1, 0, 0, 1, 1, 0]]


def test_the_shared_size_matches_the_lab_4_bit_codes():
    """16 clusters: 4-bit codes, two weights a byte, and 16 fp32 values."""
    assert key.my_shared_bytes(1000, 16) == 500 + 64


def test_the_notebook_calls_each_check_and_no_cell_before_prints_its_answer():
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]]
    for name in CATALOGUE:
        calls = [i for i, s in enumerate(cells) if f"check.{name}(" in s]
        assert calls, name
    first = min(i for i, s in enumerate(cells) if "check." in s and "def my_" in s)
    shown = " ".join(cells[:first])
    for name in ("n_m_mask", "nm_mask", "shared_bytes", "_top_channels"):
        assert f"getsource(pruning.{name}" not in shown and f"getsource(check.{name}" not in shown
