import os

# CPU only, set before jax initialises a backend (the environment spelling of
# jax.config.update("jax_platforms", "cpu"), which jax leaves unannotated).
os.environ["JAX_PLATFORMS"] = "cpu"
