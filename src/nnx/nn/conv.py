"""``Conv``: an N-dimensional convolution over channels-last inputs."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn.conv_common import (
    PaddingLike,
    channels_last,
    dilated,
    flatten_batch,
    lax_padding,
    per_axis,
    restore_batch,
)
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.linear import default_bias_init, default_kernel_init, dot_options
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

#: A replacement for ``lax.conv_general_dilated`` taking the same arguments (keywords
#: after the first two; ``preferred_element_type=`` only when the layer sets one).
ConvGeneralDilated = Callable[..., jax.Array]

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import ConvState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class Conv(Module):
    """Convolution with ``kernel`` of shape ``(*kernel_size, in_features // groups, out_features)``.

    Inputs are ``(*batch, *spatial, in_features)``. ``padding`` is ``"SAME"``
    (output size ``ceil(in / stride)``), ``"VALID"`` (no padding),
    ``"CIRCULAR"`` (periodic boundary), ``"CAUSAL"`` (1-D only: pad on the left
    so output ``t`` sees inputs ``<= t``), an int, or ``(low, high)`` pairs.
    ``input_dilation`` > 1 spreads the input out (a fractionally strided
    convolution); ``kernel_dilation`` spreads the kernel (atrous).
    ``feature_group_count`` splits the channels into groups convolved
    separately (``= in_features`` is a depthwise convolution). ``mask``
    multiplies the kernel (masked convolutions). ``preferred_element_type``
    is the dtype the convolution accumulates in and returns; ``promote_dtype``
    casts ``(x, kernel, bias)`` first; ``conv_general_dilated`` replaces the
    convolution itself; ``kernel_metadata``/``bias_metadata`` are set on the cells.
    """

    kernel: Param[jax.Array]
    bias: Param[jax.Array] | None  # None without a bias

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] | None = 1,
        *,
        padding: PaddingLike = "SAME",
        input_dilation: int | Sequence[int] | None = 1,
        kernel_dilation: int | Sequence[int] | None = 1,
        feature_group_count: int = 1,
        use_bias: bool = True,
        mask: jax.Array | None = None,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: lax.PrecisionLike = None,
        kernel_init: Initializer = default_kernel_init,
        bias_init: Initializer = default_bias_init,
        preferred_element_type: Dtype | None = None,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        conv_general_dilated: ConvGeneralDilated = lax.conv_general_dilated,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("Conv", rngs, ctx)
        self.kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        n = len(self.kernel_size)
        where = f"Conv(kernel_size={self.kernel_size})"
        if in_features % feature_group_count or out_features % feature_group_count:
            raise ValueError(
                f"{where}: in_features={in_features} and out_features={out_features} must both be "
                f"divisible by feature_group_count={feature_group_count}."
            )
        self.in_features = in_features
        self.out_features = out_features
        self.strides = per_axis(strides, n, "strides", where)
        self.padding = lax_padding(padding, n, where)
        if self.padding == "CAUSAL" and n != 1:
            raise ValueError(f"{where}: padding='CAUSAL' is for 1-D convolutions; pad explicitly instead.")
        self.input_dilation = per_axis(input_dilation, n, "input_dilation", where)
        self.kernel_dilation = per_axis(kernel_dilation, n, "kernel_dilation", where)
        self.feature_group_count = feature_group_count
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.preferred_element_type = preferred_element_type
        self.promote_dtype = promote_dtype
        self.conv_general_dilated = conv_general_dilated
        shape = (*self.kernel_size, in_features // feature_group_count, out_features)
        if mask is not None and tuple(mask.shape) != shape:
            raise ValueError(f"{where}: mask has shape {tuple(mask.shape)} but the kernel has shape {shape}.")
        self.mask = mask
        self.kernel = Param(kernel_init(rngs.params(), shape, param_dtype))
        record_metadata(self, "kernel", kernel_init, kernel_metadata)
        self.bias = None
        if use_bias:
            self.bias = Param(bias_init(rngs.params(), (out_features,), param_dtype))
            record_metadata(self, "bias", bias_init, bias_metadata)

    def __call__(self, x: jax.Array) -> jax.Array:
        n = len(self.kernel_size)
        x, batch = flatten_batch(x, n, f"Conv(kernel_size={self.kernel_size})")
        padding = self.padding
        if padding == "CIRCULAR":  # wrap the input around, then convolve without padding
            extent = dilated(self.kernel_size, self.kernel_dilation)
            wrap = [(0, 0)] + [((k - 1) // 2, k // 2) for k in extent] + [(0, 0)]
            x = jnp.pad(x, wrap, mode="wrap")  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
            padding = "VALID"
        elif padding == "CAUSAL":
            (causal_extent,) = dilated(self.kernel_size, self.kernel_dilation)
            padding = [(causal_extent - 1, 0)]
        kernel = self.kernel[...] if self.mask is None else self.kernel[...] * self.mask
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, kernel, bias), dtype=self.dtype)
        y = self.conv_general_dilated(
            x,
            kernel,
            window_strides=self.strides,
            padding=padding,
            lhs_dilation=self.input_dilation,
            rhs_dilation=self.kernel_dilation,
            dimension_numbers=channels_last(n),
            feature_group_count=self.feature_group_count,
            **dot_options(self.precision, self.preferred_element_type),
        )
        if bias is not None:
            y = y + bias
        return restore_batch(y, batch)

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Conv, ConvState]
