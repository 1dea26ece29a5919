import os

import jax

jax.config.update("jax_platforms", "cpu")

# The 8-device tests run in a subprocess of tests/test_sharding.py, with the
# device-count flag set before JAX starts; this process has one device.
if "xla_force_host_platform_device_count=8" not in os.environ.get("XLA_FLAGS", ""):
    collect_ignore = ["multidevice"]
