# Hand-written, not generated: jaxlib ships its compiled `_jax` module without a stub, so
# pyright types every name from it as Unknown, and `device: xc.Device | ...` makes each
# `jnp.zeros` / `jax.devices` "partially unknown" under strict mode. Naming `Device`/`Client` and
# typing the rest as Any (a partial stub) keeps those signatures known.
from typing import Any

class Device:
    platform: str
    device_kind: str
    id: int

class Client:
    platform: str

def __getattr__(name: str) -> Any: ...
