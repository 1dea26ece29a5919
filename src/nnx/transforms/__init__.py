"""Lifted transforms: JAX transforms over functions that take and mutate modules.

Each transform carries module arguments through JAX with the machinery in
``nnx.transforms.lift`` and writes every state change back to the caller's
objects when it returns.
"""

from nnx.transforms.autodiff import grad, value_and_grad
from nnx.transforms.axes import Carry, StateAxes
from nnx.transforms.control import cond, fori_loop, switch, while_loop
from nnx.transforms.jit import JitWrapped, jit
from nnx.transforms.remat import remat
from nnx.transforms.scan import scan
from nnx.transforms.shape import eval_shape
from nnx.transforms.vmap import vmap

__all__ = [
    "Carry", "JitWrapped", "StateAxes", "cond", "eval_shape", "fori_loop", "grad", "jit", "remat",
    "scan", "switch", "value_and_grad", "vmap", "while_loop",
]
