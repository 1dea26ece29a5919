"""Every spelling of a filter is a ``nnx.Filter``."""

import jax
import jax.numpy as jnp

import nnx


class LoRAParam(nnx.Param[jax.Array]):
    pass


class Net(nnx.Module):
    def __init__(self) -> None:
        self.w = nnx.Param(jnp.ones(2))
        self.a = LoRAParam(jnp.ones(2))
        self.mean = nnx.BatchStat(jnp.zeros(2))
        self.buffer = jnp.zeros(3)


def is_w(path: tuple[str | int, ...], value: object) -> bool:
    return path[-1] == "w"


a: nnx.Filter = nnx.Param  # a Variable kind
b: nnx.Filter = LoRAParam  # a user kind
c: nnx.Filter = "params"  # a collection name
d: nnx.Filter = ...  # everything
e: nnx.Filter = is_w  # a predicate
f: nnx.Filter = (nnx.Param, "batch_stats")  # any of a tuple
g: nnx.Filter = nnx.Not(nnx.Param)
h: nnx.Filter = nnx.All(nnx.Param, nnx.PathContains("w"))
i: nnx.Filter = nnx.Any(nnx.BatchStat, nnx.buffers)
j: nnx.Filter = nnx.buffers
k: nnx.Filter = True


net = Net()
params = nnx.state(net, nnx.Param)
lora = nnx.state(net, LoRAParam)
stats = nnx.state(net, "batch_stats")
named_w = nnx.state(net, is_w)
by_lambda = nnx.state(net, lambda path, value: path[-1] == "a")
mixed = nnx.state(net, (LoRAParam, nnx.buffers))
not_params = nnx.state(net, nnx.Not(nnx.Param))
everything = nnx.state(net, nnx.Any(nnx.Param, nnx.BatchStat, nnx.buffers))
only_w = nnx.state(net, nnx.All(nnx.Param, nnx.PathContains("w")))
from_variable = nnx.state(net, a)  # a filter held in a variable
first, rest = nnx.state(net, LoRAParam, nnx.Param)  # the first matching filter takes a leaf
