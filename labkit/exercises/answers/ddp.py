"""Reference answers for notebooks/06_ddp.ipynb and 06b_ddp_beyond_data_parallel.ipynb (plain Python: a tensor
times a number and `sum` of tensors need no import)."""


def shard_indices(n, rank, world_size):
    per_rank = -(-n // world_size)  # ceil: every rank takes the same number of examples
    order = list(range(n))
    order += order[:per_rank * world_size - n]  # pad by repeating the first examples (drop_last=False)
    return order[rank::world_size]  # round-robin: positions rank, rank + world_size, ...


def average(grads, counts):
    total = sum(counts)
    # each rank's gradient is a mean over its own examples: weight it by how many there were
    return sum(g * (c / total) for g, c in zip(grads, counts))  # a new tensor; the inputs stay as they were


def scaling_efficiency(throughput_1, throughput_n, n):
    return throughput_n / (n * throughput_1)  # the speedup, shared out over the n ranks: 1.0 is perfect


def bubble_fraction(stage_ms, microbatches):
    stages = len(stage_ms)
    # the first micro-batch passes every stage; after it, the slowest stage sets the pace
    step = sum(stage_ms) + (microbatches - 1) * max(stage_ms)
    busy = microbatches * sum(stage_ms)  # summed over the devices
    return 1 - busy / (stages * step)  # the idle share, averaged over the devices


KEY = {"shard": shard_indices, "average_gradients": average, "efficiency": scaling_efficiency,
       "bubble": bubble_fraction}
