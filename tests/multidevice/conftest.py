# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Tests in this folder need 8 (simulated) devices.

They run in their own process, started by ``tests/test_sharding.py`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` set before JAX is
imported; the main test process, which has one device, does not collect them
(see ``tests/conftest.py``). Run them directly with:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m pytest tests/multidevice
"""

import jax


def pytest_sessionstart() -> None:
    count = jax.device_count()
    if count != 8:
        raise RuntimeError(
            f"tests/multidevice needs 8 devices but JAX sees {count}; set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=8 before starting pytest."
        )
