"""The long-range kernel spectrum built on the device (dense DCT-I products) against SciPy's DCT-I and an FFT."""

from __future__ import annotations

import importlib

import numpy as np

from pipeline.electrostatics.long_range import fft_shape, kernel_spectrum, plan_long_range
from pipeline.electrostatics.splitting import EwaldSplit


def test_device_kernel_spectrum_matches_scipy_and_the_fft_of_the_even_kernel(monkeypatch):
    split = EwaldSplit(alpha=0.4)
    plan = plan_long_range((0.0, 0.0, 0.0), (12.0, 15.0, 10.0), split.t_max, 1e-6)
    fshape = fft_shape(plan.shape)
    host = kernel_spectrum(plan, split, fshape)
    # independent reference: the kernel at the wrap-around offsets of the padded grid, 3-D real FFT
    offsets = [np.minimum(np.arange(nf), nf - np.arange(nf)) * plan.spacing for nf in fshape]
    r = np.sqrt(offsets[0][:, None, None] ** 2 + offsets[1][None, :, None] ** 2 + offsets[2][None, None, :] ** 2)
    full = np.fft.rfftn(split.deconvolved_long(r, plan.sigma) * plan.spacing**3)
    ref = full[: fshape[0] // 2 + 1, : fshape[1] // 2 + 1].real
    scale = np.abs(ref).max()
    assert np.max(np.abs(host - ref)) < 1e-14 * scale  # measured 1.8e-16
    module = importlib.import_module("pipeline.electrostatics.long_range")
    monkeypatch.setattr(module, "backend_name", lambda xp: "array")  # the CuPy route, on NumPy
    device = kernel_spectrum(plan, split, fshape, xp=np)
    assert device.shape == host.shape == tuple(nf // 2 + 1 for nf in fshape)
    assert np.max(np.abs(device - ref)) < 1e-14 * scale  # measured 6.6e-16
