"""``LinearGeneral``: a dense layer over several input axes to several output axes."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence, TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.linear import DotGeneral, default_bias_init, default_dot_general, default_kernel_init, dot_options
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import LinearGeneralState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


def _as_tuple(n: int | Sequence[int]) -> tuple[int, ...]:
    return (n,) if isinstance(n, int) else tuple(n)


class LinearGeneral(Module):
    """Contract the input axes ``axis`` (sizes ``in_features``) into new trailing axes
    of sizes ``out_features``: the kernel has shape ``(*in_features, *out_features)``.

    ``LinearGeneral((heads, head_dim), embed, axis=(-2, -1))`` is an attention
    output projection. Initializers see the kernel as a matrix
    ``(prod(in_features), prod(out_features))`` so fan-in scaling is right.
    ``preferred_element_type``, ``promote_dtype``, ``dot_general`` and the
    ``*_metadata`` arguments mean what they mean for :class:`Linear`.
    """

    kernel: Param[jax.Array]
    bias: Param[jax.Array] | None  # None without a bias

    def __init__(
        self,
        in_features: int | Sequence[int],
        out_features: int | Sequence[int],
        *,
        axis: int | Sequence[int] = -1,
        use_bias: bool = True,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: lax.PrecisionLike = None,
        kernel_init: Initializer = default_kernel_init,
        bias_init: Initializer = default_bias_init,
        preferred_element_type: Dtype | None = None,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        dot_general: DotGeneral = default_dot_general,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("LinearGeneral", rngs, ctx)
        self.in_features = _as_tuple(in_features)
        self.out_features = _as_tuple(out_features)
        self.axis = _as_tuple(axis)
        if len(self.axis) != len(self.in_features):
            raise ValueError(
                f"LinearGeneral: axis={self.axis} names {len(self.axis)} input axes but in_features="
                f"{self.in_features} gives {len(self.in_features)} sizes; give one size per axis."
            )
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.preferred_element_type = preferred_element_type
        self.promote_dtype = promote_dtype
        self.dot_general = dot_general
        flat = (math.prod(self.in_features), math.prod(self.out_features))
        kernel = kernel_init(rngs.params(), flat, param_dtype)
        self.kernel = Param(kernel.reshape(self.in_features + self.out_features))
        record_metadata(self, "kernel", kernel_init, kernel_metadata)
        self.bias = None
        if use_bias:
            bias = bias_init(rngs.params(), (flat[1],), param_dtype)
            self.bias = Param(bias.reshape(self.out_features))
            record_metadata(self, "bias", bias_init, bias_metadata)

    def __call__(self, x: jax.Array) -> jax.Array:
        unsorted = tuple(a % x.ndim for a in self.axis)  # kernel axes follow the order given
        got = tuple(x.shape[a] for a in unsorted)
        if got != self.in_features:
            raise ValueError(
                f"LinearGeneral(in_features={self.in_features}) got an input of shape {x.shape} whose "
                f"axes {self.axis} have sizes {got}; reshape the input or change in_features."
            )
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        contract = (unsorted, tuple(range(len(unsorted))))
        options = dot_options(self.precision, self.preferred_element_type)
        y = self.dot_general(x, kernel, (contract, ((), ())), **options)
        if bias is not None:
            y = y + bias
        return y

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[LinearGeneral, LinearGeneralState]
