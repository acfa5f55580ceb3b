"""The ``tensor-products`` stage writes a self-describing netCDF file."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.cli import main


def test_tensor_products_stage(tmp_path):
    out = tmp_path / "tp.nc"
    status = main(["tensor-products", "-o", str(out), "--lmax", "1", "2", "--batch", "20", "--repeats", "2", "--device", "cpu", "--dtype", "float64"])
    assert status == 0
    ds = xr.open_dataset(out)
    assert dict(ds.sizes) == {"method": 4, "lmax": 2, "pass": 2, "device": 1}
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds.expressivity.sel({"method": "cg"}).values.tolist() == [6, 19]
    assert ds.expressivity.sel({"method": "gaunt_grid"}).values.tolist() == [5, 9]
    assert ds.span.sel({"method": "gaunt_fourier"}).values.tolist() == [5, 14]
    assert ds.n_paths.sel({"method": "vector_gaunt"}).values.tolist() == [1, 5]
    assert float(ds.max_abs_error.sel({"method": ["cg", "gaunt_grid", "gaunt_fourier"]}).max()) < 1e-12
    assert bool((ds.time_median > 0).all()) and bool((ds.flops.sel({"method": "cg"}) > 0).all())
    ds.close()


def test_tensor_products_stage_rejects_bad_arguments(tmp_path, capsys):
    out = tmp_path / "tp.nc"
    assert main(["tensor-products", "-o", str(out), "--batch", "0"]) == 1
    assert "--batch must be >= 1, got 0" in capsys.readouterr().err
    assert not out.exists()
