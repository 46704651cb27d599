"""The exercise catalogue of notebooks 06 and 06b (labkit.exercises.ddp): per exercise, the answer key passes,
the shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake learners
really make (written as the code they write) gets a Hint that names it. Plus: no constant passes, the inputs
must stay unchanged, the truths come from torch's sampler and a simulated schedule, and every exercise cell of
the two notebooks has a key with the stub's signature, whose answer the notebooks do not print earlier."""

import inspect
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint
from labkit.exercises import ddp as check
from labkit.exercises.answers import ddp as key

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


# ---------------------------------------------------------------- 06, exercise 1: which examples each rank sees

def shard_stub(n, rank, world_size):
    # YOUR CODE
    ...


def shard_forgot_return(n, rank, world_size):
    list(range(rank, n, world_size))


def shard_blocks(n, rank, world_size):
    per = -(-n // world_size)
    return list(range(rank * per, min((rank + 1) * per, n)))


def shard_from_zero(n, rank, world_size):
    per = -(-n // world_size)
    order = list(range(n)) + list(range(per * world_size - n))
    return order[0::world_size]


def shard_no_padding(n, rank, world_size):
    return list(range(rank, n, world_size))


def shard_drop_tail(n, rank, world_size):
    return list(range(rank, n - n % world_size, world_size))


def shard_pad_with_last(n, rank, world_size):
    per = -(-n // world_size)
    order = list(range(n)) + [n - 1] * (per * world_size - n)
    return order[rank::world_size]


def shard_pad_from_end(n, rank, world_size):
    per = -(-n // world_size)
    order = list(range(n))
    order += order[::-1][:per * world_size - n]
    return order[rank::world_size]


def shard_hard_coded(n, rank, world_size):
    return [1, 5, 9]


def shard_with_torch(n, rank, world_size):
    return list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False))


# ---------------------------------------------------------------- 06, exercise 2: the gradient of uneven batches

def average_stub(grads, counts):
    # YOUR CODE
    ...


def average_forgot_return(grads, counts):
    total = sum(counts)
    sum(g * c / total for g, c in zip(grads, counts))


def average_plain_mean(grads, counts):
    return torch.stack(grads).mean(dim=0)


def average_sum(grads, counts):
    return torch.stack(grads).sum(dim=0)


def average_not_divided(grads, counts):
    return sum(g * c for g, c in zip(grads, counts))


def average_by_ranks(grads, counts):
    return sum(g * c for g, c in zip(grads, counts)) / len(grads)


def average_by_examples(grads, counts):
    return sum(grads) / sum(counts)


def average_upside_down(grads, counts):
    weights = [1 / c for c in counts]
    return sum(g * w for g, w in zip(grads, weights)) / sum(weights)


def average_in_place(grads, counts):
    total = sum(counts)
    out = grads[0].mul_(counts[0] / total)
    for g, c in zip(grads[1:], counts[1:]):
        out += g * (c / total)
    return out


def average_one_number(grads, counts):
    return torch.cat([g.flatten() * c for g, c in zip(grads, counts)]).sum() / sum(counts)


def average_rank0(grads, counts):
    return grads[0]


def average_hard_coded(grads, counts):
    return torch.tensor([0.1, -0.2])


def average_with_a_loop(grads, counts):
    out = torch.zeros_like(grads[0])
    for g, c in zip(grads, counts):
        out = out + c * g
    return out / sum(counts)


# ---------------------------------------------------------------- 06, exercise 3: scaling efficiency

def eff_stub(throughput_1, throughput_n, n):
    # YOUR CODE
    ...


def eff_forgot_return(throughput_1, throughput_n, n):
    throughput_n / (n * throughput_1)


def eff_speedup(throughput_1, throughput_n, n):
    return throughput_n / throughput_1


def eff_percent(throughput_1, throughput_n, n):
    return 100 * throughput_n / (n * throughput_1)


def eff_upside_down(throughput_1, throughput_n, n):
    return n * throughput_1 / throughput_n


def eff_two_ranks(throughput_1, throughput_n, n):
    return throughput_n / (2 * throughput_1)


def eff_capped(throughput_1, throughput_n, n):
    return min(1.0, throughput_n / (n * throughput_1))


def eff_hard_coded(throughput_1, throughput_n, n):
    return 0.75


# ---------------------------------------------------------------- 06b, exercise 1: the bubble, unequal stages

def bubble_stub(stage_ms, microbatches):
    # YOUR CODE
    ...


def bubble_forgot_return(stage_ms, microbatches):
    step = sum(stage_ms) + (microbatches - 1) * max(stage_ms)
    1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_equal_stages(stage_ms, microbatches):
    s = len(stage_ms)
    return (s - 1) / (microbatches + s - 1)


def bubble_busy(stage_ms, microbatches):
    step = sum(stage_ms) + (microbatches - 1) * max(stage_ms)
    return microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_no_overlap(stage_ms, microbatches):
    step = microbatches * sum(stage_ms)
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_lockstep(stage_ms, microbatches):
    step = (microbatches + len(stage_ms) - 1) * max(stage_ms)
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_fastest(stage_ms, microbatches):
    step = sum(stage_ms) + (microbatches - 1) * min(stage_ms)
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_mean_stage(stage_ms, microbatches):
    step = sum(stage_ms) + (microbatches - 1) * sum(stage_ms) / len(stage_ms)
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_no_fill(stage_ms, microbatches):
    step = microbatches * max(stage_ms)
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


def bubble_hard_coded(stage_ms, microbatches):
    return 3 / 11


def bubble_simulated(stage_ms, microbatches):
    free = [0.0] * len(stage_ms)
    for _ in range(microbatches):
        t = 0.0
        for s, cost in enumerate(stage_ms):
            t = max(t, free[s]) + cost
            free[s] = t
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * free[-1])


CATALOGUE = {
    "shard": (check.shard, key.shard_indices, shard_stub, shard_forgot_return, {
        "contiguous blocks": (shard_blocks, "contiguous"),
        "always from 0": (shard_from_zero, "rank 0's share"),
        "no padding": (shard_no_padding, "unequal numbers"),
        "drops the tail": (shard_drop_tail, "dropped"),
        "pads with the last example": (shard_pad_with_last, "repeats the last example"),
        "pads from the end": (shard_pad_from_end, "from the end"),
        "hard-coded": (shard_hard_coded, "must be seen"),
        "asks torch's sampler": (shard_with_torch, "yourself"),
    }),
    "average_gradients": (check.average_gradients, key.average, average_stub, average_forgot_return, {
        "plain mean": (average_plain_mean, "weighted equally"),
        "sum": (average_sum, "sum over the ranks"),
        "not divided": (average_not_divided, "not divided"),
        "divided by the ranks": (average_by_ranks, "number of ranks"),
        "means treated as sums": (average_by_examples, "already a mean"),
        "upside-down weights": (average_upside_down, "upside down"),
        "in place": (average_in_place, "in place"),
        "one number": (average_one_number, "one number"),
        "rank 0": (average_rank0, "rank 0's own"),
        "hard-coded": (average_hard_coded, "expected"),
    }),
    "efficiency": (check.efficiency, key.scaling_efficiency, eff_stub, eff_forgot_return, {
        "speedup": (eff_speedup, "speedup"),
        "percentage": (eff_percent, "percentage"),
        "upside down": (eff_upside_down, "upside down"),
        "two ranks": (eff_two_ranks, "argument n"),
        "capped": (eff_capped, "capped"),
        "hard-coded": (eff_hard_coded, "would mean"),
    }),
    "bubble": (check.bubble, key.bubble_fraction, bubble_stub, bubble_forgot_return, {
        "equal-stage formula": (bubble_equal_stages, "equal stages"),
        "busy share": (bubble_busy, "busy share"),
        "no overlap": (bubble_no_overlap, "no overlap"),
        "lockstep": (bubble_lockstep, "lockstep"),
        "fastest stage": (bubble_fastest, "not the fastest"),
        "average stage": (bubble_mean_stage, "average one"),
        "no fill and drain": (bubble_no_fill, "draining"),
        "hard-coded": (bubble_hard_coded, "simulated schedule"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("check_fn, answer", [(check.average_gradients, average_with_a_loop),
                                              (check.bubble, bubble_simulated)])
def test_answers_written_other_ways_pass(check_fn, answer):
    assert "passed" in check_fn(answer)


def test_the_key_agrees_with_torch_and_the_simulation():
    for n, world in check.SHARD_CASES:
        for rank in range(world):
            assert key.shard_indices(n, rank, world) == shard_with_torch(n, rank, world)
            assert check._sampler(n, rank, world) == shard_with_torch(n, rank, world)
    for stage_ms, m in check.BUBBLE_CASES:
        assert abs(key.bubble_fraction(stage_ms, m) - bubble_simulated(stage_ms, m)) < 1e-12
    assert key.bubble_fraction([2.0] * 4, 8) == pytest.approx(3 / 11)  # equal stages: (S − 1)/(M + S − 1)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("ddp", "bubble"))
    check.bubble(bubble_stub)
    assert "try it first" in check.solution("bubble")
    with pytest.raises(Hint):
        check.bubble(bubble_busy)
    assert "def bubble_fraction(stage_ms, microbatches):" in check.solution("bubble")


# ---------------------------------------------------------------- the notebooks' cells and the key

def _cells(notebook: str) -> list[dict]:
    return json.loads((NOTEBOOKS / notebook).read_text())["cells"]


def test_no_exercise_answer_is_printed_before_its_exercise():
    """06 shows the sampler with drop_last=True and the all-reduce divided by the world size; 06b's text gives
    the bubble of equal stages. The exercises are the variants those do not answer: padding, uneven batches,
    unequal stages. No formula of the unequal-stage bubble may appear before its exercise."""
    cells = _cells("06b_ddp_beyond_data_parallel.ipynb")
    before = "".join("".join(c["source"]) for c in cells[:next(i for i, c in enumerate(cells)
                                                                if "check.bubble(" in "".join(c["source"]))])
    assert "max(" not in before and "slowest" not in before.split("## Exercises")[0]
    from labkit.techniques import ddp
    assert "drop_last=True" in inspect.getsource(ddp.shard_loader)  # the shown sampler never pads: exercise 1 asks for the padding
