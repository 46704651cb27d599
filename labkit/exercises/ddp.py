"""Checks for notebooks/06_ddp.ipynb: sharding, averaging gradients, scaling efficiency; and for
notebooks/06b_ddp_beyond_data_parallel.ipynb: the pipeline bubble."""

from __future__ import annotations

from typing import Callable

import torch

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def shard(shard_indices: Callable) -> str:
    """`shard_indices(n, rank, world_size)`: the example indices DistributedSampler(shuffle=False)
    gives `rank` out of `n` examples (n a multiple of world_size)."""
    name = "Exercise 1 (which examples does each rank see?)"
    result = call_answer(name, shard_indices, 12, 1, 4)
    if result is None:
        return not_attempted(name, "the sampler deals examples out like cards: rank r gets r, r + world_size, ...")
    got = [int(i) for i in result]
    if got == [1, 5, 9]:
        every = sorted(int(i) for r in range(3) for i in call_answer(name, shard_indices, 9, r, 3))
        if every != list(range(9)):
            raise Hint(f"{name}: over all ranks of 9 examples and 3 ranks you gave {every}: "
                       "every example must be seen exactly once.")
        return passed(name)
    if got == [3, 4, 5]:
        raise Hint(f"{name}: got {got}, a contiguous block. DistributedSampler deals round-robin: "
                   "rank 1 of 4 takes positions 1, 5, 9.")
    if got == [0, 4, 8]:
        raise Hint(f"{name}: got {got}: that is rank 0's share. Start at `rank`.")
    raise Hint(f"{name}: got {got} for n=12, rank=1, world_size=4; each rank takes every world_size-th example.")


def average_gradients(average: Callable) -> str:
    """`average(grads)`: given each rank's gradient (a list of tensors), what every rank holds after
    DDP's all-reduce: the element-wise mean."""
    name = "Exercise 2 (what all-reduce leaves on every rank)"
    grads = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0]), torch.tensor([5.0, 1.0])]
    result = call_answer(name, average, [g.clone() for g in grads])
    if result is None:
        return not_attempted(name, "all_reduce(SUM) adds every rank's tensor; DDP then divides by the number of ranks.")
    result = torch.as_tensor(result, dtype=torch.float32)
    if result.shape == (2,) and torch.allclose(result, torch.tensor([3.0, 3.0])):
        return passed(name)
    if result.shape == (2,) and torch.allclose(result, torch.tensor([9.0, 9.0])):
        raise Hint(f"{name}: got the sum {result.tolist()}: DDP divides by the world size, so the step "
                   "matches one process with the whole batch (a mean loss).")
    if result.shape == (2,) and torch.allclose(result, grads[0]):
        raise Hint(f"{name}: got rank 0's own gradient: all-reduce combines every rank's.")
    raise Hint(f"{name}: got {result.tolist()}; expected the element-wise mean over the 3 ranks.")


def efficiency(scaling_efficiency: Callable) -> str:
    """`scaling_efficiency(throughput_1, throughput_n, n)`: throughput_n / (n × throughput_1)."""
    name = "Exercise 3 (scaling efficiency)"
    result = call_answer(name, scaling_efficiency, 1000.0, 3000.0, 4)
    if result is None:
        return not_attempted(name, "perfect scaling makes n ranks n times as fast as one: compare with that.")
    if close(result, 0.75):
        return passed(name)
    if close(result, 3.0):
        raise Hint(f"{name}: got {result:g}: that is the speedup. Efficiency divides it by the number of ranks.")
    if close(result, 75.0):
        raise Hint(f"{name}: got {result:g}: return a fraction (0 to 1), not a percentage.")
    raise Hint(f"{name}: got {result:g} for 1000 → 3000 images/s on 4 ranks.")


def bubble(bubble_fraction: Callable) -> str:
    """`bubble_fraction(stages, microbatches)`: GPipe's idle share, (S − 1) / (M + S − 1)."""
    name = "Exercise 1 of 06b (the pipeline bubble)"
    result = call_answer(name, bubble_fraction, 4, 8)
    if result is None:
        return not_attempted(name, "draw the schedule: a step lasts M + S − 1 slots, and each device works M of them.")
    if close(result, 3 / 11):
        one_stage = call_answer(name, bubble_fraction, 1, 5)
        if one_stage is None or abs(float(one_stage)) > 1e-9:
            raise Hint(f"{name}: one stage never waits: bubble_fraction(1, M) must be 0.")
        return passed(name)
    if close(result, 3 / 8):
        raise Hint(f"{name}: got {result:g}: divide by the whole step, M + S − 1 slots, not by M.")
    if close(result, 8 / 11):
        raise Hint(f"{name}: got {result:g}: that is the busy share; the bubble is the idle share.")
    raise Hint(f"{name}: got {result:g} for 4 stages and 8 micro-batches.")
