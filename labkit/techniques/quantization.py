"""Quantization: store and compute with fewer bits (fp32 → bf16 → int8 → int4).

What it does (notebook 08):
- the affine mapping by hand: scale and zero point, per tensor or per output channel,
  `quantize` / `dequantize` / `fake_quantize`, and the error they make at b bits;
- log (power-of-two) quantization, `log_quantize`, against the linear grid at the same bit widths:
  the weights' error and the model's accuracy (`log_vs_linear`);
- post-training quantization with torchao (the current library; `torch.ao.quantization` is
  deprecated): dynamic int8 (`Int8DynamicActivationInt8WeightConfig`), static int8
  (`Int8StaticActivationInt8WeightConfig`) whose activation scales come from a calibration pass, and
  torchao's x86 path (PT2E export + `X86InductorQuantizer`, calibrated, lowered by inductor to oneDNN
  int8 kernels);
- quantization-aware training with torchao's `QATConfig` at low-bit weights, against PTQ;
- bf16 weight storage as the simple baseline;
- int8 speed against layer width: int8 pays off only where big matrix products dominate.

Every torchao int8 model is timed after `torch.compile` with inductor's `freezing` on: the weights become
constants, so inductor pre-packs them and swaps the integer matmul for oneDNN's quantized linear
(without freezing, torchao's CPU int8 matmul runs a generic integer kernel). fp32 is timed both
eager and compiled the same way, so each int8 path is compared with fp32 run the same way.

Headline (`labkit bench quantization`), on a Linear-heavy MLP (784-1024-1024-10; 512 wide in smoke
mode), one run, latencies at batch 64 with cfg.threads threads, medians after warm-up (compile time
reported apart):
- int8_speedup: the fastest fp32 path (eager or compiled + frozen) / torchao's x86 PT2E int8, the
  variant chosen before measuring;
- int8_speedup_best: the same against the fastest of the three torchao int8 variants (a maximum
  over noisy variants: read it with int8_speedup beside it);
- int8_speedup_eager: eager fp32 / the eager int8 path, `torch.ao.quantization.quantize_dynamic`
  (fbgemm; deprecated);
- compile_speedup_fp32: eager fp32 / compiled + frozen fp32;
- int8_speedup_widest: compiled fp32 / compiled x86 int8 at the widest width of the width sweep;
- size_ratio: fp32 / int8 bytes on disk; accuracy_drop_pt: fp32 minus dynamic int8 test accuracy;
- log_vs_linear_err_ratio_4bit: the squared error of rounding the trained weights to a 4-bit power-of-two
  grid / that of the 4-bit linear grid, both per channel (> 1: the log grid errs more).
"""

from __future__ import annotations

import copy
import io
import math
import time
import warnings
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn

from labkit import bench, data, env, models, stats, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard


@dataclass
class QuantConfig:
    width: int = 1024             # MLP hidden width: Linear-heavy, where int8 matmuls pay off
    depth: int = 2                # MLP hidden layers
    epochs: int = 4               # fp32 training epochs
    lr: float = 0.01              # SGD + momentum 0.9
    calib_batches: int = 8        # static PTQ: batches of 64 training images used for calibration
    qat_bits: int = 2             # weight bits for PTQ vs QAT: few bits, where rounding moves the weights most
    qat_epochs: int = 1           # QAT fine-tuning epochs, starting from the fp32 model
    qat_lr: float = 0.002         # QAT fine-tuning learning rate
    qat_seeds: tuple[int, ...] = (1, 2, 3)  # fine-tuning seeds for PTQ vs QAT: the verdict is over these
    threads: int = 2              # CPU threads for every latency measurement
    min_run_time: float = 0.5     # seconds of timing per latency measurement
    time_static: bool = True      # also compile and time static int8 (two more compilations)
    sweep_widths: tuple[int, ...] = (256, 1024, 2048, 4096)  # int8 speed against layer width (untrained MLPs)
    log_bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)  # bit widths of the log-vs-linear comparison
    seed: int = 0


def config_for(run_mode: str) -> QuantConfig:
    return env.pick(smoke=QuantConfig(width=512, epochs=2, calib_batches=4, qat_seeds=(1, 2), min_run_time=0.1,
                                      time_static=False,
                                      sweep_widths=(256, 512), log_bits=(2, 3, 4, 8)),
                    full=QuantConfig(), run_mode=run_mode)


# ---------------------------------------------------------------- the technique: the affine mapping
def check_bits(bits: int) -> None:
    if not isinstance(bits, int) or not 1 <= bits <= 16:
        raise LabkitError(f"bits={bits!r} must be a whole number from 1 to 16 (8 for int8, 4 for int4).")


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integer range: [-(2^(b-1) - 1), 2^(b-1) - 1] symmetric, [0, 2^b - 1] asymmetric (unsigned)."""
    check_bits(bits)
    if symmetric:
        top = max(2 ** (bits - 1) - 1, 1)  # 1 bit symmetric: the levels -1, 0, 1 (really 1.6 bits)
        return -top, top
    return 0, 2 ** bits - 1


def scale_zero_point(x: torch.Tensor, bits: int, *, per_channel: bool = False,
                     symmetric: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point so that [min, max] of x (of each row with per_channel) maps onto the integer range."""
    # shown in notebook 08_quantization
    q_min, q_max = qrange(bits, symmetric)
    dims = tuple(range(1, x.dim())) if per_channel else tuple(range(x.dim()))
    lo = x.amin(dim=dims, keepdim=per_channel).clamp(max=0)   # the range must contain 0: zero stays exact
    hi = x.amax(dim=dims, keepdim=per_channel).clamp(min=0)
    if symmetric:
        scale = torch.maximum(hi, -lo) / q_max
        zero_point = torch.zeros_like(scale)
    else:
        scale = (hi - lo) / (q_max - q_min)
        zero_point = torch.round(q_min - lo / scale.clamp(min=1e-12))
    return scale.clamp(min=1e-12), zero_point


def quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int,
             symmetric: bool = False) -> torch.Tensor:
    """q = clamp(round(x / scale) + zero_point) — integers (kept in an int32 tensor)."""
    # shown in notebook 08_quantization
    q_min, q_max = qrange(bits, symmetric)
    return torch.clamp(torch.round(x / scale) + zero_point, q_min, q_max).to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """x ≈ (q - zero_point) · scale."""
    # shown in notebook 08_quantization
    return (q.float() - zero_point) * scale


def fake_quantize(x: torch.Tensor, bits: int, *, per_channel: bool = False, symmetric: bool = False) -> torch.Tensor:
    """x rounded to the b-bit grid and back to float: what a quantized model computes with."""
    scale, zero_point = scale_zero_point(x, bits, per_channel=per_channel, symmetric=symmetric)
    return dequantize(quantize(x, scale, zero_point, bits, symmetric), scale, zero_point)


def quant_error(x: torch.Tensor, bits: int, *, per_channel: bool = False, symmetric: bool = False) -> dict:
    """Mean absolute error and signal-to-quantization-noise ratio (dB) of fake-quantizing x."""
    rounded = fake_quantize(x, bits, per_channel=per_channel, symmetric=symmetric)
    err = rounded - x
    return {"bits": bits, "levels": 2 ** bits, "mean_abs_error": float(err.abs().mean()),
            "max_abs_error": float(err.abs().max()), "sqnr_db": sqnr_db([x], [rounded])}


# ---------------------------------------------------------------- another grid: powers of two (log quantization)
def log_quantize(x: torch.Tensor, bits: int, *, per_channel: bool = False) -> torch.Tensor:
    """x rounded to a power-of-two grid and back to float: every value becomes 0 or ±s·2^-k.

    The scheme: s = max |x| (of each row with per_channel); 1 bit holds the sign, the other bits-1 bits
    hold a code 0 … 2^(bits-1) - 1, where code 0 means 0 and code c ≥ 1 means the magnitude s·2^-(n-c),
    n = 2^(bits-1) - 1. So the magnitudes are s, s/2, s/4, …, s·2^-(n-1): 2^bits - 1 values with the
    signs and 0. Each value goes to the NEAREST of them (rounding log2|x| to a whole number instead, a
    common variant, would move the boundary between 2^k and 2^(k+1) from 1.5·2^k to √2·2^k)."""
    # shown in notebook 08_quantization
    check_bits(bits)
    if not 2 <= bits <= 8:
        raise LabkitError(f"bits={bits} for log quantization: use 2 to 8 (1 bit for the sign, the rest for the "
                          "exponent).")
    n = 2 ** (bits - 1) - 1                                  # magnitude levels besides 0
    dims = tuple(range(1, x.dim())) if per_channel else tuple(range(x.dim()))
    s = x.abs().amax(dim=dims, keepdim=per_channel).clamp(min=1e-12)
    exponents = torch.arange(n - 1, -1, -1, device=x.device)  # n-1, …, 1, 0
    grid = torch.cat([torch.zeros(1, device=x.device), 2.0 ** -exponents.to(x.dtype)])  # 0, 2^-(n-1), …, 1/2, 1
    nearest = torch.bucketize(x.abs() / s, (grid[1:] + grid[:-1]) / 2)  # index of the nearest grid value
    return torch.sign(x) * grid[nearest] * s


WEIGHT_GRIDS = {  # name → (weight, bits) → the weight rounded to that grid, in float
    "linear, per tensor": lambda w, bits: fake_quantize(w, bits),
    "linear, per channel": lambda w, bits: fake_quantize(w, bits, per_channel=True),
    "log, per tensor": lambda w, bits: log_quantize(w, bits),
    "log, per channel": lambda w, bits: log_quantize(w, bits, per_channel=True),
}


def levels_used(w: torch.Tensor, per_channel: bool) -> int:
    """How many distinct values a rounded weight uses: in the whole tensor, or in its fullest row."""
    rows = w.flatten(1) if per_channel else w.flatten()[None]
    ordered = rows.sort(dim=1).values
    return int((ordered.diff(dim=1) != 0).sum(dim=1).max()) + 1


def sqnr_db(originals: list[torch.Tensor], rounded: list[torch.Tensor]) -> float:
    """Signal-to-quantization-noise ratio (dB) over several tensors: their total energy / total error energy."""
    signal = sum(float(x.pow(2).sum()) for x in originals)
    noise = sum(float((r - x).pow(2).sum()) for x, r in zip(originals, rounded))
    return 10 * math.log10(signal / max(noise, 1e-30))


def kurtosis(x: torch.Tensor) -> float:
    """E[(x - mean)^4] / var^2: 1.8 for a uniform distribution, 3 for a Gaussian, 6 for a Laplace; the
    larger, the more of the values sit near the centre with a few far out in the tails."""
    centred = x.flatten() - x.mean()
    return float(centred.pow(4).mean() / centred.pow(2).mean().pow(2))


def linear_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach() for m in model.modules() if isinstance(m, nn.Linear)]


def round_linears(model: nn.Module, grid: str, bits: int) -> nn.Module:
    """A copy of the model whose every Linear weight is rounded to WEIGHT_GRIDS[grid] at `bits`
    (weights only: biases and activations stay fp32)."""
    q = copy.deepcopy(model).eval()
    with torch.no_grad():
        for layer in q.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(WEIGHT_GRIDS[grid](layer.weight, bits))
    return q


def correct_per_image(model: nn.Module, splits: data.Splits) -> torch.Tensor:
    """1.0 where the model classifies a test image right, else 0.0 (one entry per test image)."""
    with torch.no_grad():
        return (model.eval()(splits.X_test).argmax(1) == splits.y_test).float()


def log_vs_linear(model: nn.Module, splits: data.Splits, bits: tuple[int, ...] = QuantConfig.log_bits) -> dict:
    """Linear (affine) against log (power-of-two) rounding of the trained model's Linear weights, at the
    same bit widths, per tensor and per channel: the weights' SQNR (dB), the levels used, and the test
    accuracy with every Linear weight rounded (activations fp32). Returns "table" (one row per bits × grid),
    "verdicts" (one row per bits × granularity: which grid errs less, which is more accurate, where the
    accuracy difference is paired over the test images with `stats.paired`), those Paired objects, and
    every variant's per-image correctness."""
    weights = linear_weights(model)
    rows, correct = [], {"fp32": correct_per_image(model, splits)}
    for b in bits:
        for name in WEIGHT_GRIDS:
            rounded = round_linears(model, name, b)
            per_channel = name.endswith("per channel")
            correct[(b, name)] = correct_per_image(rounded, splits)
            rows.append({"bits": b, "grid": name,
                         "levels": max(levels_used(w, per_channel) for w in linear_weights(rounded)),
                         "sqnr_db": sqnr_db(weights, linear_weights(rounded)),
                         "accuracy": float(correct[(b, name)].mean())})
    table = pd.DataFrame(rows)
    sqnr = table.set_index(["bits", "grid"])["sqnr_db"]
    verdicts, paired = [], {}
    for b in bits:
        for granularity in ("per tensor", "per channel"):
            lin, log = f"linear, {granularity}", f"log, {granularity}"
            acc = paired[(b, granularity)] = stats.paired(
                (100 * correct[(b, log)]).tolist(), (100 * correct[(b, lin)]).tolist(),
                f"log {b}-bit {granularity}", "linear", "pt", over="test images")
            verdicts.append({"bits": b, "granularity": granularity,
                             "sqnr_log_minus_linear_db": sqnr[(b, log)] - sqnr[(b, lin)],
                             "lower_error": "log" if sqnr[(b, log)] > sqnr[(b, lin)] else "linear",
                             "acc_log_minus_linear_pt": acc.mean, "acc_low_pt": acc.low, "acc_high_pt": acc.high,
                             "higher_accuracy": {"higher": "log", "lower": "linear"}.get(acc.verdict, "within noise")})
    return {"table": table, "verdicts": pd.DataFrame(verdicts), "paired": paired, "correct": correct,
            "fp32_accuracy": float(correct["fp32"].mean())}


def weights_sqnr_db(model: nn.Module, grid: str, bits: int) -> float:
    """SQNR (dB) of rounding all the model's Linear weights to WEIGHT_GRIDS[grid] at `bits`."""
    weights = linear_weights(model)
    return sqnr_db(weights, [WEIGHT_GRIDS[grid](w, bits) for w in weights])


# ---------------------------------------------------------------- models: fp32, bf16, int8 (torchao)
def train_fp32(splits: data.Splits, cfg: QuantConfig, progress: bool = False) -> nn.Module:
    env.seed_everything(cfg.seed)
    model = models.MLP(width=cfg.width, depth=cfg.depth)
    train.fit(model, splits, epochs=cfg.epochs, lr=cfg.lr, device="cpu", seed=cfg.seed, progress=progress)
    return model.eval()


def half_weights(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """A copy stored (and computed) in bf16 or fp16: half the bytes, no calibration, no kernels needed."""
    return copy.deepcopy(model).to(dtype).eval()


def cpu_int8_units() -> str:
    """The CPU's int8 dot-product instructions. Without VNNI or AMX, an int8 multiply-add goes through
    AVX2's vpmaddubsw, whose 16-bit intermediate sums can saturate and which is at best ≈ 2× fp32 FMA."""
    flags = env.cpu_flags()
    for flag, name in (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI")):
        if flag in flags:
            return name
    return "none (AVX2 only)" if "avx2" in flags else "none"


def int8_dynamic(model: nn.Module) -> nn.Module:
    """torchao: int8 weights (per channel); activations quantized per row at run time (no calibration).
    On a CPU without VNNI the ranges are reduced by one bit so that the kernel's 16-bit sums cannot saturate."""
    # shown in notebook 08_quantization
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    q = copy.deepcopy(model).eval()
    quantize_(q, Int8DynamicActivationInt8WeightConfig(reduce_range=not cpu_int8_units().startswith(("AMX", "AVX"))))
    check_int8(q)
    return q


def int8_dynamic_legacy(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """The older eager path, `torch.ao.quantization.quantize_dynamic` (DEPRECATED, fbgemm int8 kernels):
    shown for comparison only. Its deprecation warnings are recorded and returned, not hidden."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
        q(torch.zeros(1, 1, 28, 28))  # the first call emits the remaining warnings
    messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:110]}" for w in caught})
    return q, messages


def calibrate(model: nn.Module, X: torch.Tensor, batches: int, batch_size: int = 64) -> dict[str, float]:
    """Static PTQ's calibration: run a few batches and record each Linear input's largest |value|."""
    # shown in notebook 08_quantization
    amax: dict[str, float] = {}
    hooks = []
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear):
            def record(mod, inputs, name=name):
                amax[name] = max(amax.get(name, 0.0), float(inputs[0].abs().max()))
            hooks.append(layer.register_forward_pre_hook(record))
    with torch.no_grad():
        for i in range(batches):
            model(X[i * batch_size:(i + 1) * batch_size])
    for h in hooks:
        h.remove()
    return amax


def int8_static(model: nn.Module, amax: dict[str, float]) -> nn.Module:
    """torchao: int8 weights AND a fixed, calibrated int8 scale per layer for its input activations."""
    # shown in notebook 08_quantization
    from torchao.quantization import Int8StaticActivationInt8WeightConfig, quantize_
    from torchao.quantization.granularity import PerTensor

    q = copy.deepcopy(model).eval()
    for name, top in amax.items():
        scale = torch.tensor([[max(top, 1e-8) / 127]])  # symmetric: |x| ≤ amax maps onto [-127, 127]
        config = Int8StaticActivationInt8WeightConfig(act_quant_scale=scale, granularity=PerTensor())
        quantize_(q, config, filter_fn=lambda mod, fqn, name=name: fqn == name)
    check_int8(q)
    return q


def int8_static_x86(model: nn.Module, X: torch.Tensor, batches: int, batch_size: int = 64) -> nn.Module:
    """torchao's x86 path: export the model's graph, insert observers (X86InductorQuantizer: uint8
    activations, int8 per-channel weights), calibrate on a few batches, convert to int8 operations."""
    # shown in notebook 08_quantization
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    batch = torch.export.Dim("batch", min=1, max=65536)
    graph = torch.export.export(copy.deepcopy(model).eval(), (X[:batch_size],), dynamic_shapes=({0: batch},)).module()
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    observed = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(batches):  # calibration: the observers record each activation's range
            observed(X[i * batch_size:(i + 1) * batch_size])
    q = convert_pt2e(observed)
    allow_exported_model_train_eval(q)  # so that evaluate() may call .eval()
    return q


def graph_size_mb(graph: nn.Module) -> float:
    """Bytes on disk (MB) of the tensors an exported graph really uses: export keeps the unused fp32
    originals as attributes beside the int8 copies, so its state_dict would overstate the size."""
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    tensors = {name: t for name, t in graph.state_dict().items() if name in used}
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getbuffer().nbytes / 1e6


def check_int8(model: nn.Module) -> None:
    """Raise unless every Linear's weight is really stored as int8."""
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear):
            qdata = getattr(layer.weight, "qdata", None)
            if qdata is None or qdata.dtype != torch.int8:
                raise LabkitError(f"layer {name!r} still has {layer.weight.dtype} weights: quantization did not take effect.")


def qat_prepare(model: nn.Module, bits: int) -> nn.Module:
    """torchao QAT 'prepare': Linears fake-quantize weights to `bits` (per channel) and activations to int8."""
    # shown in notebook 08_quantization
    from torchao.quantization import quantize_
    from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig

    check_bits(bits)
    if bits > 8:
        raise LabkitError(f"bits={bits} is more than torchao's fake quantizer supports here: use 1 to 8.")
    q = copy.deepcopy(model)
    weight = IntxFakeQuantizeConfig(getattr(torch, f"int{bits}"), "per_channel")
    act = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False)
    quantize_(q, QATConfig(activation_config=act, weight_config=weight, step="prepare"))
    return q


def check_qat(model: nn.Module, bits: int) -> None:
    """Raise unless every Linear computes with weights rounded to at most 2^bits levels per row."""
    linears = [(name, layer) for name, layer in model.named_modules() if isinstance(layer, nn.Linear)]
    for name, layer in linears:
        fake = getattr(layer, "weight_fake_quantizer", None)
        if fake is None:
            raise LabkitError(f"layer {name!r} is a plain Linear: QAT's fake quantization did not take effect.")
        with torch.no_grad():
            levels = max(len(row.unique()) for row in fake(layer.weight))
        if levels > 2 ** bits:
            raise LabkitError(f"layer {name!r} computes with {levels} weight levels in a row, more than 2^{bits}.")


def ptq_vs_qat(model: nn.Module, splits: data.Splits, cfg: QuantConfig, progress: bool = False) -> dict:
    """Accuracy at cfg.qat_bits-bit weights, both after the same extra fine-tuning epochs, once per seed in
    cfg.qat_seeds (the seed orders the fine-tuning batches): fine-tuned in fp32 then quantized (PTQ), or
    fine-tuned with fake quantization in the loop (QAT). Returns one row per seed and the paired verdicts."""
    rows, qat_model = [], None
    for seed in cfg.qat_seeds:
        tuned = copy.deepcopy(model)
        plain = train.fit(tuned, splits, epochs=cfg.qat_epochs, lr=cfg.qat_lr, device="cpu", seed=seed,
                          progress=progress)
        ptq = qat_prepare(tuned, cfg.qat_bits).eval()  # fake quantization, no training: what PTQ computes
        qat = qat_prepare(model, cfg.qat_bits)
        fit = train.fit(qat, splits, epochs=cfg.qat_epochs, lr=cfg.qat_lr, device="cpu", seed=seed,
                        progress=progress)
        check_qat(qat, cfg.qat_bits)
        rows.append({"seed": seed, "fp32": accuracy(tuned, splits), "PTQ": accuracy(ptq, splits),
                     "QAT": accuracy(qat.eval(), splits), "fp32_train_time_s": plain.train_time_s,
                     "qat_train_time_s": fit.train_time_s})
        qat_model = qat_model or qat
    table = pd.DataFrame(rows).set_index("seed")
    pct = {k: (100 * table[k]).tolist() for k in ("fp32", "PTQ", "QAT")}
    return {"table": table, "qat_model": qat_model,
            "qat_vs_ptq": stats.paired(pct["QAT"], pct["PTQ"], "QAT", "PTQ", "pt"),
            "ptq_vs_fp32": stats.paired(pct["PTQ"], pct["fp32"], "PTQ", "fp32", "pt")}


def accuracy(model: nn.Module, splits: data.Splits) -> float:
    first = next(model.parameters(), None)  # torch.ao's quantized modules keep packed weights, no parameters
    X = splits.X_test.to(first.dtype) if first is not None and first.dtype in (torch.float16, torch.bfloat16) else splits.X_test
    return train.evaluate(model, X, splits.y_test, device=torch.device("cpu"))[1]


# ---------------------------------------------------------------- measurements
def latencies_ms(variants: dict[str, tuple[nn.Module, torch.dtype]], batch: int, cfg: QuantConfig) -> dict[str, float]:
    """Median forward latency (ms) of every variant at `batch` with cfg.threads threads, timed in turns
    (`bench.time_interleaved`) so that load on the machine hits them alike; compiled models are compiled
    beforehand (`compile_now`), so compilation is never in the timings."""
    inputs = {name: torch.randn(batch, 1, 28, 28, dtype=dtype) for name, (_, dtype) in variants.items()}
    fns = {name: (lambda m=model, x=inputs[name]: m(x)) for name, (model, _) in variants.items()}
    with torch.no_grad():
        timings = bench.time_interleaved(fns, min_run_time=cfg.min_run_time, num_threads=cfg.threads)
    return {name: t.median_ms for name, t in timings.items()}


def compile_now(compiled: nn.Module, x: torch.Tensor) -> float:
    """Call a torch.compile'd model once at x's shape with inductor's freezing on, which compiles it for
    that shape; returns the seconds it took. Freezing lets inductor pre-pack the weights and use oneDNN's
    int8 kernels: without it torchao's CPU int8 matmul runs a generic integer kernel."""
    # shown in notebook 08_quantization
    import torch._inductor.config as inductor_config

    start = time.perf_counter()
    with torch.no_grad(), inductor_config.patch(freezing=True), warnings.catch_warnings():
        # torch's own lowering code builds a tensor with torch.tensor(tensor): a UserWarning aimed at
        # torch's developers, not at us; this one message is filtered here only.
        warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)
        compiled(x)
    return time.perf_counter() - start


def compile_frozen(model: nn.Module) -> tuple[nn.Module, float]:
    """torch.compile the model (freezing on) for batch 64 and batch 1; returns it and the compile seconds."""
    fast = torch.compile(model)
    return fast, sum(compile_now(fast, torch.randn(batch, 1, 28, 28)) for batch in (64, 1))


def train_step_ms(models_: dict[str, nn.Module], cfg: QuantConfig, batch: int = 128) -> dict[str, float]:
    """Median time (ms) of one SGD training step at `batch` for each model, timed in turns: for the claim
    'quantization speeds up training'."""
    return bench.time_train_steps(models_, batch=batch, seed=cfg.seed, num_threads=cfg.threads,
                                  min_run_time=cfg.min_run_time)


FP32_COMPILED = "fp32, compiled + frozen"
INT8_TORCHAO = ("int8 dynamic", "int8 static", "int8 static, x86 PT2E")
INT8_HEADLINE = "int8 static, x86 PT2E"   # chosen before measuring: the path torchao recommends for x86 CPUs
INT8_LEGACY = "int8 dynamic, torch.ao eager (deprecated)"


def compare(splits: data.Splits, cfg: QuantConfig, fp32: nn.Module | None = None,
            progress: bool = False) -> tuple[ResultCard, dict]:
    """fp32 (eager and compiled), bf16 weights and four int8 variants side by side: accuracy, size, parameters,
    and latencies at batch 64 and 1, all timed in one interleaved pass after every model is built."""
    fp32 = fp32 if fp32 is not None else train_fp32(splits, cfg, progress)
    params = models.count_params(fp32)
    bf16 = half_weights(fp32)
    dyn = int8_dynamic(fp32)
    amax = calibrate(fp32, splits.X_train, cfg.calib_batches)
    static = int8_static(fp32, amax)
    x86 = int8_static_x86(fp32, splits.X_train, cfg.calib_batches)
    legacy, legacy_warnings = int8_dynamic_legacy(fp32)
    rows = {"fp32": {"accuracy": accuracy(fp32, splits), "size_mb": bench.model_size_mb(fp32)},
            # fp32 compiled the same way as every torchao int8 row (inductor, freezing on): their fair baseline
            FP32_COMPILED: {"accuracy": accuracy(fp32, splits), "size_mb": bench.model_size_mb(fp32)},
            "bf16 weights": {"accuracy": accuracy(bf16, splits), "size_mb": bench.model_size_mb(bf16)},
            "int8 dynamic": {"accuracy": accuracy(dyn, splits), "size_mb": bench.model_size_mb(dyn)},
            "int8 static": {"accuracy": accuracy(static, splits), "size_mb": bench.model_size_mb(static)},
            "int8 static, x86 PT2E": {"accuracy": accuracy(x86, splits), "size_mb": graph_size_mb(x86)},
            INT8_LEGACY: {"accuracy": accuracy(legacy, splits), "size_mb": bench.model_size_mb(legacy)}}
    timed = {"fp32": (fp32, torch.float32), "bf16 weights": (bf16, torch.bfloat16), INT8_LEGACY: (legacy, torch.float32)}
    to_compile = {FP32_COMPILED: copy.deepcopy(fp32), "int8 dynamic": dyn, "int8 static, x86 PT2E": x86}
    if cfg.time_static:
        to_compile["int8 static"] = static
    for name, model in to_compile.items():
        fast, rows[name]["compile_s"] = compile_frozen(model)
        timed[name] = (fast, torch.float32)
    for batch, key in ((64, "latency_ms"), (1, "latency_b1_ms")):
        for name, ms in latencies_ms(timed, batch, cfg).items():
            rows[name][key] = ms
    card = ResultCard(title=f"Quantizing a {cfg.width}-wide MLP", baseline="fp32")
    for name, row in rows.items():
        card.add({"variant": name, **row, "params": params})
    return card, {"fp32": fp32, "int8_dynamic": dyn, "int8_static": static, "int8_static_x86": x86,
                  "calibration_amax": amax, "legacy_warnings": legacy_warnings}


def speedup_by_width(cfg: QuantConfig, widths: tuple[int, ...] | None = None, batch: int = 64) -> ResultCard:
    """int8 against fp32 at batch `batch` for MLPs of growing width (untrained: speed does not depend on the
    values). One row per width: fp32 eager and compiled, torchao x86 int8 (compiled: against compiled fp32)
    and the deprecated fbgemm int8 (eager: against eager fp32)."""
    widths = widths or cfg.sweep_widths
    card = ResultCard(title=f"int8 speed against layer width (batch {batch}, {cfg.threads} threads)")
    for width in widths:
        torch.manual_seed(cfg.seed)
        model = models.MLP(width=width, depth=cfg.depth).eval()
        X = torch.randn(cfg.calib_batches * 64, 1, 28, 28)
        ms = latencies_ms({"fp32": (model, torch.float32),
                           "fp32 compiled": (compile_frozen(copy.deepcopy(model))[0], torch.float32),
                           "x86": (compile_frozen(int8_static_x86(model, X, cfg.calib_batches))[0], torch.float32),
                           "fbgemm": (int8_dynamic_legacy(model)[0], torch.float32)}, batch, cfg)
        fp32_ms, fp32_compiled_ms, x86_ms, legacy_ms = ms["fp32"], ms["fp32 compiled"], ms["x86"], ms["fbgemm"]
        # each int8 kernel against fp32 run the same way: compiled against compiled, eager against eager
        card.add({"variant": f"width {width}", "weights_mb": bench.model_size_mb(model), "fp32_ms": fp32_ms,
                  "fp32_compiled_ms": fp32_compiled_ms, "x86_int8_ms": x86_ms, "fbgemm_int8_ms": legacy_ms,
                  "x86_speedup": fp32_compiled_ms / x86_ms, "fbgemm_speedup": fp32_ms / legacy_ms})
    return card


def bench_report(card: ResultCard, cfg: QuantConfig, run_mode: str,
                 width_card: ResultCard | None = None, fp32: nn.Module | None = None) -> BenchReport:
    """The report `labkit bench quantization` prints, from the cards made by `compare` and `speedup_by_width`
    (and, given the trained fp32 model, the weights' log/linear error ratio at 4 bits)."""
    timed = [r["variant"] for r in card.rows if r["variant"] in INT8_TORCHAO and r.get("latency_ms") is not None]
    fastest_fp32_ms = min(card.value("fp32", "latency_ms"), card.value(FP32_COMPILED, "latency_ms"))
    int8_ms = {name: card.value(name, "latency_ms") for name in timed}
    headline = {"int8_speedup": fastest_fp32_ms / int8_ms[INT8_HEADLINE],
                "int8_speedup_best": fastest_fp32_ms / min(int8_ms.values()),
                "int8_speedup_eager": card.speedup(INT8_LEGACY, "latency_ms"),
                "compile_speedup_fp32": card.speedup(FP32_COMPILED, "latency_ms"),
                "size_ratio": card.speedup("int8 dynamic", "size_mb"),
                "accuracy_drop_pt": 0.0 - card.delta_pt("int8 dynamic")}
    if width_card is not None:
        widest = width_card.rows[-1]
        headline["int8_speedup_widest"] = widest["x86_speedup"]
    if fp32 is not None:  # error energy of log / of linear rounding, both per channel: > 1 means log errs more
        gap_db = weights_sqnr_db(fp32, "linear, per channel", 4) - weights_sqnr_db(fp32, "log, per channel", 4)
        headline["log_vs_linear_err_ratio_4bit"] = 10 ** (gap_db / 10)
    return BenchReport(name="quantization", mode=run_mode, card=card, config=asdict(cfg), headline=headline)


def headline(mode: str | None = None) -> BenchReport:
    """Train the MLP, quantize it, and return the report `labkit bench quantization` prints."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    splits = data.load_for_mode(run_mode)
    card, extra = compare(splits, cfg)
    return bench_report(card, cfg, run_mode, speedup_by_width(cfg), fp32=extra["fp32"])
