"""Where a model runs and in what precision: the device, the weights' dtype and the engine's
autocast, each resolved from the user's choice (or `auto`) and this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cram_harness.errors import CramError

if TYPE_CHECKING:
    import torch

WEIGHT_DTYPES = ("auto", "fp32", "float32", "bf16", "bfloat16")
AUTOCAST_CHOICES = ("auto", "bf16", "off")
# The paper ran Pythia (GPT-NeoX) in plain fp32 and the other models with bf16 autocast.
FP32_MODEL_TYPES = ("gpt_neox",)


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The weights' dtype. `auto` is fp32 everywhere: the paper kept fp32 weights (and the
    [mem] vectors in fp32) and used bf16 only through autocast; bf16 weights are an explicit
    choice, recorded in the results. fp16 weights are refused before the model loads (the
    engine does no loss scaling: engine/adapter.py, `weights_refused`)."""
    import torch

    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16}
    if dtype == "auto":
        return torch.float32
    if dtype in ("fp16", "float16"):
        raise CramError("--dtype fp16: fp16 weights are not supported (their gradients "
                        "underflow unseen without loss scaling): use fp32 (bf16 autocast on a "
                        "GPU) or bf16")
    if dtype not in names:
        raise CramError(f"unknown dtype {dtype!r}: use one of {', '.join(WEIGHT_DTYPES)}")
    return names[dtype]


def resolve_autocast(choice: str, model: Any) -> str:
    """The engine's compute precision, "bf16" (autocast over fp32 weights) or "fp32". `auto`
    is the paper's: bf16 autocast on a GPU that has it, except for the architectures the
    paper ran in fp32 (Pythia); fp32 on a CPU. bf16 weights compute in bf16 whatever this is."""
    import torch

    if choice not in AUTOCAST_CHOICES:
        raise CramError(f"unknown autocast {choice!r}: use one of {', '.join(AUTOCAST_CHOICES)}")
    if model.dtype == torch.bfloat16:
        return "bf16"
    if model.dtype != torch.float32 or choice == "off":
        return "fp32"  # fp16 weights: no autocast on top
    if choice == "bf16":
        return "bf16"
    on_gpu = model.device.type == "cuda" and torch.cuda.is_bf16_supported()
    model_type = getattr(model.config, "model_type", "")
    return "bf16" if on_gpu and model_type not in FP32_MODEL_TYPES else "fp32"


def available_devices() -> list[str]:
    """The devices torch can use on this machine, best first: CUDA GPUs, Intel XPUs, Apple's
    MPS, the CPU."""
    import torch

    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        found += [f"xpu:{i}" for i in range(xpu.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(device: str) -> str:
    """`auto` is the best device there is; anything else must be one this machine has."""
    import torch

    have = available_devices()
    if device == "auto":
        return "cuda" if have[0] == "cuda:0" else have[0]
    try:
        wanted = torch.device(device)
    except (RuntimeError, ValueError):
        raise CramError(f"unknown device {device!r}: this machine has {', '.join(have)} "
                        "(or auto)") from None
    index = 0 if wanted.index is None else wanted.index
    name = wanted.type if wanted.type in ("cpu", "mps") else f"{wanted.type}:{index}"
    if name not in have:
        raise CramError(f"device {device!r} is not on this machine: it has "
                        f"{', '.join(have)} (or auto)")
    return device
