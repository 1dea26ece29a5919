"""``Einsum``: a layer whose kernel is contracted with the input by an einsum string."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn.dtypes import Dtype, promote_dtype
from nnx.nn.linear import default_bias_init, default_kernel_init
from nnx.nn.metadata import Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import EinsumState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class Einsum(Module):
    """``y = einsum(einsum_str, x, kernel) + bias``.

    ``Einsum("btd,dhk->bthk", (d, h, k), (h, k), rngs=rngs)`` projects to
    attention heads. ``bias_shape`` must broadcast against the trailing axes
    of the output; ``None`` means no bias.
    """

    kernel: Param[jax.Array]
    bias: Param[jax.Array] | None  # None without a bias

    def __init__(
        self,
        einsum_str: str,
        kernel_shape: Sequence[int],
        bias_shape: Sequence[int] | None = None,
        *,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: lax.PrecisionLike = None,
        kernel_init: Initializer = default_kernel_init,
        bias_init: Initializer = default_bias_init,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("Einsum", rngs, ctx)
        operands, arrow, _ = einsum_str.replace(" ", "").partition("->")
        if not arrow or operands.count(",") != 1:
            raise ValueError(
                f"Einsum({einsum_str!r}): expected two operands and an explicit output, "
                "like 'btd,dk->btk' (input first, kernel second)."
            )
        kernel_spec = operands.split(",")[1]
        if len(kernel_spec) != len(kernel_shape):
            raise ValueError(
                f"Einsum({einsum_str!r}): the kernel spec {kernel_spec!r} has {len(kernel_spec)} axes but "
                f"kernel_shape={tuple(kernel_shape)} has {len(kernel_shape)}; make them agree."
            )
        self.einsum_str = einsum_str.replace(" ", "")
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.use_bias = bias_shape is not None
        self.kernel = Param(kernel_init(rngs.params(), tuple(kernel_shape), param_dtype))
        record_metadata(self, "kernel", kernel_init)
        self.bias = None
        if bias_shape is not None:
            self.bias = Param(bias_init(rngs.params(), tuple(bias_shape), param_dtype))
            record_metadata(self, "bias", bias_init)

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        y = jnp.einsum(self.einsum_str, x, kernel, precision=self.precision)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
        if bias is not None:
            y = y + bias
        return y

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Einsum, EinsumState]
