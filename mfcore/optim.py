"""The one optimiser and the one mixed-precision context of every training loop in the book."""

from __future__ import annotations

import torch


def adam(params, lr: float) -> torch.optim.Adam:
    """The book's Adam, for every training loop: one fused kernel for all tensors when they are on CUDA (a pure
    speed-up: NaiveFuse's 201 M weights made the foreach step half of a training step), the default implementation on
    the CPU. ``params``: tensors, or parameter groups (dicts, each may carry its own ``lr``)."""
    params = list(params)
    first = [p["params"][0] if isinstance(p, dict) else p for p in params]
    on_cuda = bool(first) and all(p.is_cuda for p in first)
    return torch.optim.Adam(params, lr=lr, fused=True) if on_cuda else torch.optim.Adam(params, lr=lr)


def autocast(device: torch.device):
    """bf16 autocast on CUDA, a no-op elsewhere (the CPU book stays float32 and deterministic)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
