"""The backend module: names, devices and mixing checks."""

import numpy as np
import pytest

from pipeline.backend import backend_name, get_xp, namespace_of, to_host, xp_for_device
from tests.conftest import requires_gpu


def test_numpy_backend_and_device_cpu():
    assert get_xp("numpy") is np
    assert xp_for_device("cpu") is np
    assert backend_name(np) == "numpy"
    assert namespace_of(np.zeros(2), np.ones(3)) is np


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="numpy, cupy"):
        get_xp("jax")
    with pytest.raises(ValueError, match="cpu, cuda, auto"):
        xp_for_device("tpu")


def test_to_host_returns_numpy():
    a = np.arange(3.0)
    np.testing.assert_array_equal(to_host(a), a)


@requires_gpu
def test_cupy_round_trip_and_mixing_error():
    cp = get_xp("cupy")
    a = cp.arange(4.0)
    assert namespace_of(a) is cp
    np.testing.assert_array_equal(to_host(a), np.arange(4.0))
    with pytest.raises(TypeError, match="mixed"):
        namespace_of(a, np.arange(4.0))
