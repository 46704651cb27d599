"""Reference answers for notebooks/03_mixed_precision.ipynb (the notebook imports `torch`, not `math`)."""

import torch


def my_spacing(x, dtype):
    import math
    exponent = math.floor(math.log2(abs(x)))  # x lies in [2^e, 2^(e+1)): its binade
    return torch.finfo(dtype).eps * 2.0 ** exponent  # eps is the gap at 1; it grows with the binade


def my_scale_for(g):
    import math
    tiny = torch.finfo(torch.float16).tiny  # fp16's smallest normal number, 2^-14
    k = max(0, math.ceil(math.log2(tiny / g)))  # the fewest doublings that lift g to tiny; never scale down
    return 2.0 ** k


def my_scaled_step(model, opt, X, y, scale):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(X), y)
    (loss * scale).backward()  # every gradient is multiplied by the scale
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    for g in grads:
        g.div_(scale)  # unscale: the optimizer must see the true gradients
    if all(torch.isfinite(g).all() for g in grads):
        opt.step()  # skip the step when a gradient overflowed
    opt.zero_grad()
    return loss


KEY = {"spacing": my_spacing, "min_loss_scale": my_scale_for, "loss_scaled_step": my_scaled_step}
