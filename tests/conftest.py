import os

# CPU only, set before jax initialises a backend (the environment spelling of
# jax.config.update("jax_platforms", "cpu"), which jax leaves unannotated).
os.environ["JAX_PLATFORMS"] = "cpu"

# The 8-device tests run in a subprocess of tests/test_sharding.py, with the
# device-count flag set before JAX starts; this process has one device.
if "xla_force_host_platform_device_count=8" not in os.environ.get("XLA_FLAGS", ""):
    collect_ignore = ["multidevice"]
