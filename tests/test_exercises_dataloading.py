"""The exercise catalogue of notebook 02_data_loading: the answer key passes, the shipped stub is "not
attempted", a forgotten `return` is named, and each mistake learners make (written as their code) gets a Hint
naming it; exercise 2's checker sees a per-image loop, exercise 3's sees a reseeded global generator."""

import random

import numpy as np
import torch

from exercise_catalogue import CatalogueTests
from labkit.exercises import dataloading as check
from labkit.exercises.answers import dataloading as key

# ---------------------------------------------------------------- exercise 1: the speed-up bound


def bound_stub(wait_ms, compute_ms):
    # YOUR CODE
    ...


def bound_forgot_return(wait_ms, compute_ms):
    (wait_ms + compute_ms) / compute_ms


def bound_wait_over_compute(wait_ms, compute_ms):
    return wait_ms / compute_ms


def bound_compute_fraction(wait_ms, compute_ms):
    return compute_ms / (wait_ms + compute_ms)


def bound_wait_fraction(wait_ms, compute_ms):
    return wait_ms / (wait_ms + compute_ms)


def bound_percent(wait_ms, compute_ms):
    return 100 * wait_ms / compute_ms


def bound_time_saved(wait_ms, compute_ms):
    return wait_ms


def bound_hard_coded(wait_ms, compute_ms):
    return 4.0


# ---------------------------------------------------------------- exercise 2: a batched transform

def flip_stub(x, flip, mean, std):
    # YOUR CODE
    ...


def flip_forgot_return(x, flip, mean, std):
    out = (x.float() / 255 - mean) / std
    torch.where(flip[:, None, None, None], out.flip(-1), out)


def flip_none(x, flip, mean, std):
    return (x.float() / 255 - mean) / std


def flip_all(x, flip, mean, std):
    return ((x.float() / 255 - mean) / std).flip(-1)


def flip_inverted_mask(x, flip, mean, std):
    out = (x.float() / 255 - mean) / std
    return torch.where(flip[:, None, None, None], out, out.flip(-1))


def flip_upside_down(x, flip, mean, std):
    out = (x.float() / 255 - mean) / std
    return torch.where(flip[:, None, None, None], out.flip(-2), out)


def flip_not_scaled(x, flip, mean, std):
    out = (x.float() - mean) / std
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def flip_not_normalised(x, flip, mean, std):
    out = x.float() / 255
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def flip_no_std(x, flip, mean, std):
    out = x.float() / 255 - mean
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def flip_precedence(x, flip, mean, std):
    out = x.float() / 255 - mean / std
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def flip_uint8(x, flip, mean, std):
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def flip_python_loop(x, flip, mean, std):
    out = (x.float() / 255 - mean) / std
    return torch.stack([img.flip(-1) if f else img for img, f in zip(out, flip)])


def flip_index_loop(x, flip, mean, std):
    out = (x.float() / 255 - mean) / std
    for i in range(len(out)):
        if flip[i]:
            out[i] = out[i].flip(-1)
    return out


# ---------------------------------------------------------------- exercise 3: a replayable sampler

def batches_stub(n, batch_size, seed, epoch):
    # YOUR CODE
    ...


def batches_forgot_return(n, batch_size, seed, epoch):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def batches_keeps_last(n, batch_size, seed, epoch):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    return list(order.split(batch_size))


def batches_with_replacement(n, batch_size, seed, epoch):
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    return [torch.randint(0, n, (batch_size,), generator=g) for _ in range(n // batch_size)]


def batches_not_shuffled(n, batch_size, seed, epoch):
    order = torch.arange(n)
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def batches_global_seed(n, batch_size, seed, epoch):
    torch.manual_seed(seed * 1000 + epoch)
    order = torch.randperm(n)
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def batches_numpy_global_seed(n, batch_size, seed, epoch):
    np.random.seed(seed * 1000 + epoch)
    order = np.random.permutation(n)
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


SHARED = torch.Generator().manual_seed(0)


def batches_generator_made_outside(n, batch_size, seed, epoch):
    order = torch.randperm(n, generator=SHARED)
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def batches_epoch_ignored(n, batch_size, seed, epoch):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def batches_seed_ignored(n, batch_size, seed, epoch):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def batches_drop_before_shuffle(n, batch_size, seed, epoch):
    kept = n - n % batch_size
    order = torch.randperm(kept, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    return [order[s:s + batch_size] for s in range(0, kept, batch_size)]


def batches_python_random(n, batch_size, seed, epoch):
    rng = random.Random(seed * 1000 + epoch)  # a generator of its own: right
    order = list(range(n))
    rng.shuffle(order)
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


CATALOGUE = {
    "speedup_bound": (check.speedup_bound, key.speedup_bound, bound_stub, bound_forgot_return, {
        "wait / compute": (bound_wait_over_compute, "wait over compute"),
        "fraction computing": (bound_compute_fraction, "fraction of the step spent computing"),
        "fraction waiting": (bound_wait_fraction, "fraction of the step spent waiting"),
        "percent": (bound_percent, "percent"),
        "time saved": (bound_time_saved, "time saved"),
        "hard-coded": (bound_hard_coded, "expected"),
    }),
    "normalise_and_flip": (check.normalise_and_flip, key.normalise_and_flip, flip_stub, flip_forgot_return, {
        "none mirrored": (flip_none, "no image was mirrored"),
        "all mirrored": (flip_all, "every image was mirrored"),
        "mask inverted": (flip_inverted_mask, "wrong way round"),
        "upside down": (flip_upside_down, "upside down"),
        "not scaled by 255": (flip_not_scaled, "255"),
        "not normalised": (flip_not_normalised, "not normalised"),
        "no std": (flip_no_std, "std"),
        "precedence": (flip_precedence, "parentheses"),
        "uint8 returned": (flip_uint8, "float"),
        "Python loop over images": (flip_python_loop, "loop over images"),
        "index loop over images": (flip_index_loop, "loop over images"),
    }),
    "shuffled_batches": (check.shuffled_batches, key.shuffled_batches, batches_stub, batches_forgot_return, {
        "keeps the last, smaller batch": (batches_keeps_last, "drop_last"),
        "with replacement": (batches_with_replacement, "with replacement"),
        "not shuffled": (batches_not_shuffled, "increasing order"),
        "reseeds torch's global generator": (batches_global_seed, "global random generator"),
        "reseeds numpy's global generator": (batches_numpy_global_seed, "global random generator"),
        "generator made outside": (batches_generator_made_outside, "earlier calls"),
        "epoch ignored": (batches_epoch_ignored, "the epoch must change"),
        "seed ignored": (batches_seed_ignored, "the seed must choose"),
        "drops before shuffling": (batches_drop_before_shuffle, "dropped every epoch"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


def test_a_sampler_with_its_own_python_generator_passes():
    assert "passed" in check.shuffled_batches(batches_python_random)


