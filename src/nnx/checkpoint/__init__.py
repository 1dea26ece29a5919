"""Checkpoints: save a model's state to disk and restore it, exactly.

Two back ends, the same contract:

* ``save`` / ``restore`` / ``load``: one safetensors file keyed by dotted state
  paths, Variable kinds in its metadata (``pip install 'nnx[checkpoint]'``);
* ``save_orbax`` / ``restore_orbax`` / ``CheckpointManager``: orbax-checkpoint
  directories (orbax's standard handler; keep-last-N and step numbers with the
  manager), restoring onto abstract states with shardings.

Both store typed PRNG keys (``key<fry>``), restore into a concrete or abstract
model or a State, accept filters for a partial restore, and refuse a
checkpoint that does not fit with a ``CheckpointMismatchError`` listing every
missing, unexpected and mismatched path, before changing anything.

Saves are crash-safe (``nnx.checkpoint.atomic``): written aside and swapped in
when complete, one process at a time per path, with the scratch of killed
saves cleaned by the next save or restore.
"""

from nnx.checkpoint.common import CheckpointError, CheckpointMismatchError
from nnx.checkpoint.orbax_format import CheckpointManager, from_orbax, restore_orbax, save_orbax, to_orbax
from nnx.checkpoint.safetensors_format import load, restore, save

__all__ = [
    "CheckpointError", "CheckpointManager", "CheckpointMismatchError", "from_orbax", "load", "restore",
    "restore_orbax", "save", "save_orbax", "to_orbax",
]
