"""Device names in settings (``encoding.device``, ``mllm.backends.*.device``) and what they mean.

A device setting is ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``. ``auto`` picks CUDA
when available, else Apple's MPS, else the CPU. :func:`check_device_name` checks the spelling
without importing torch (so settings can be refused before any work);
:func:`resolve_device` also checks that the device exists on this machine.
"""

from __future__ import annotations

import re

DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICES_HELP = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

__all__ = ["DEVICES", "DEVICES_HELP", "check_device_name", "resolve_device"]


def check_device_name(device, what: str = "device") -> str:
    """``device`` as a string if it is spelled as a device setting, else ``ValueError`` naming
    ``what`` (the setting) and the valid names."""
    name = str(device)
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what}: unknown device {name!r}; valid: {DEVICES_HELP}")
    return name


def resolve_device(device="auto", what: str = "device"):
    """The ``torch.device`` a device setting stands for on this machine.

    ``auto`` -> ``cuda`` if available, else ``mps`` if available, else ``cpu``. A CUDA or MPS
    device that this machine lacks (no CUDA, or ``cuda:N`` with N >= the number of GPUs) is a
    ``ValueError`` that names ``what`` and says what to use instead.
    """
    import torch

    name = check_device_name(device, what)
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{what}: {name!r} requested but CUDA is not available; use 'cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"{what}: {name!r} requested but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1}); use one of them or 'auto'"
            )
    if dev.type == "mps" and not has_mps:
        raise ValueError(
            f"{what}: {name!r} requested but MPS is not available; use 'cpu' or 'auto'"
        )
    return dev
