"""Bad input on the device route: no CuPy, no device, out of device memory (one line, nothing written)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from pipeline import backend
from pipeline.cli import main
from pipeline.storage import write_netcdf
from pipeline.structures.record import Structure, structure_to_dataset


class FakeOutOfMemory(MemoryError):
    """Stands in for ``cupy.cuda.memory.OutOfMemoryError`` (a MemoryError with the sizes)."""

    def __init__(self, size, total):
        self._size, self._total = size, total
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes).")


def _fake_cupy(device_count):
    def count():
        if device_count is None:
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=count, memGetInfo=lambda: (2 * 2**30, 80 * 2**30))
    return types.SimpleNamespace(__name__="cupy", cuda=types.SimpleNamespace(runtime=runtime))


def test_cuda_without_cupy_names_both_extras(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match=r"\.\[gpu\]\".*cupy-cuda12x.*\.\[gpu-cuda13\]\".*cupy-cuda13x"):
        backend.xp_for_device("cuda")
    assert not backend.cupy_available()
    assert backend.xp_for_device("auto") is np


@pytest.mark.parametrize("count", [0, None])
def test_cuda_with_cupy_but_no_device(monkeypatch, count):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count))
    with pytest.raises(RuntimeError, match="finds no usable CUDA device.*--device cpu"):
        backend.xp_for_device("cuda")
    assert not backend.cupy_available()
    assert backend.xp_for_device("auto") is np


def test_special_functions_follow_the_backend():
    import scipy.special

    assert backend.special_functions(np) is scipy.special


def test_out_of_device_memory_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    structure = Structure(positions=rng.uniform(0, 20, (50, 3)), charges=rng.normal(size=50), attrs={"structure_id": "s"})
    write_netcdf(structure_to_dataset(structure), tmp_path / "s.nc")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(1))

    def run(args):
        raise FakeOutOfMemory(3 * 2**30, 70 * 2**30)

    monkeypatch.setattr("pipeline.cli.potential.run", run)  # the stage handler, bound when main() registers it
    out = tmp_path / "p.nc"
    assert main(["potential", str(tmp_path / "s.nc"), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: out of device memory (Out of memory allocating 3,221,225,472 bytes")
    assert "more than 73.00 GiB of the device's 80.0 GiB" in err[0] and "potential-chunk --chunks" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "s.nc"]


def test_out_of_host_memory_names_the_setting(tmp_path, monkeypatch, capsys):
    def run(args):
        raise MemoryError("Unable to allocate 12.0 GiB for an array with shape (1610612736,)")

    monkeypatch.setattr("pipeline.cli.tensor_products.run", run)  # bound when main() registers the stages
    assert main(["tensor-products", "-o", str(tmp_path / "t.nc")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: out of host memory (Unable to allocate 12.0 GiB")
    assert err[0].endswith("use a smaller --batch or --device cpu")

