"""Reference answers for notebooks/02_data_loading.ipynb (the notebook imports `torch`)."""

import torch


def speedup_bound(wait_ms, compute_ms):
    step_now = wait_ms + compute_ms  # the step waits, then computes
    step_then = compute_ms  # a perfect pipeline removes the wait, not the compute
    return step_now / step_then


def normalise_and_flip(x, flip, mean, std):
    out = (x.float() / 255 - mean) / std  # uint8 → [0, 1] → normalised, whole batch
    return torch.where(flip[:, None, None, None], out.flip(-1), out)  # per image: mirrored or not


def shuffled_batches(n, batch_size, seed, epoch):
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)  # own stream: (seed, epoch) alone
    order = torch.randperm(n, generator=generator)  # shuffle first, then drop the leftover
    return [order[start:start + batch_size] for start in range(0, n - batch_size + 1, batch_size)]


KEY = {"speedup_bound": speedup_bound, "normalise_and_flip": normalise_and_flip,
       "shuffled_batches": shuffled_batches}
