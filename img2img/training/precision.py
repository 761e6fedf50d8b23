"""Numeric precision of a training step: fp32, or autocast bf16 / fp16 with a grad scaler.

The step functions call `autocast()`, `backward(loss)`, `step(optimizer)` and `update()`;
in fp32 and bf16 these are the plain operations (the scaler is disabled), so the same step
code serves every mode.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..plans.execution import native_cpu_bf16


@dataclass
class Precision:
    device_type: str  # "cpu", "cuda", "mps"
    dtype: torch.dtype | None  # autocast dtype; None = fp32 (no autocast)
    scaler: torch.amp.GradScaler  # enabled only for fp16
    note: str = ""  # why the precision differs from what was asked, if it does

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)

    def update(self) -> None:
        self.scaler.update()

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def choose_precision(device: torch.device, amp: bool) -> Precision:
    """fp32 unless `amp`: then bf16 where the hardware has it, else fp16 + scaler on CUDA.

    A CPU without native bf16 (no AVX512-BF16 / AMX) trains in fp32, with a `note`: emulated
    bf16 would be slower than fp32 there.
    """
    kind = device.type
    if not amp:
        return Precision(kind, None, torch.amp.GradScaler(kind, enabled=False))
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(kind, torch.bfloat16, torch.amp.GradScaler(kind, enabled=False))
        return Precision(kind, torch.float16, torch.amp.GradScaler(kind))
    if kind == "cpu" and native_cpu_bf16():
        return Precision(kind, torch.bfloat16, torch.amp.GradScaler(kind, enabled=False))
    if kind == "mps":
        return Precision(kind, torch.bfloat16, torch.amp.GradScaler("cpu", enabled=False))
    note = f"--amp ignored: this {kind} has no native bf16 (AVX512-BF16 or AMX); using fp32"
    return Precision(kind, None, torch.amp.GradScaler("cpu", enabled=False), note)
