"""Reference answers for notebooks/07_pruning.ipynb (the notebook imports `torch`, not `math`)."""

import torch


def my_n_m_mask(weight, n, m):
    groups = weight.abs().reshape(-1, m)  # consecutive runs of m weights along each row
    keep = groups.topk(n, dim=1).indices  # the n largest |w| of each group
    mask = torch.zeros_like(groups).scatter_(1, keep, 1.0)  # 1 = keep, 0 = prune
    return mask.reshape(weight.shape)


def my_channels_to_keep(conv_weight, keep):
    l1 = conv_weight.abs().sum(dim=(1, 2, 3))  # one L1 norm per output channel
    return l1.topk(keep).indices.sort().values  # the largest `keep`, in their original order


def my_shared_bytes(n_weights, k):
    import math
    bits = math.ceil(math.log2(k))  # a code must tell k values apart: a whole number of bits
    codes = math.ceil(n_weights * bits / 8)  # the codes packed tightly, rounded up to whole bytes
    return codes + 4 * k  # plus the codebook: k fp32 values of 4 bytes


KEY = {"n_m_mask": my_n_m_mask, "channels_to_keep": my_channels_to_keep, "shared_bytes": my_shared_bytes}
