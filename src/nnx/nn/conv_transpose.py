"""``ConvTranspose``: the transpose (gradient) of a convolution, for upsampling."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, TYPE_CHECKING

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

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import ConvTransposeState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class ConvTranspose(Module):
    """Transposed convolution with ``kernel`` of shape ``(*kernel_size, in_features, out_features)``.

    With ``strides=s`` the output is about ``s`` times larger per spatial axis.
    ``padding``: ``"SAME"`` (output ``in * stride``), ``"VALID"`` (the full
    transposed output), ``"CIRCULAR"`` (output ``in * stride`` with the
    overhang wrapped around periodically), or explicit ``(low, high)`` pairs
    (applied to the dilated input, as in ``lax.conv_transpose``).
    ``transpose_kernel=True`` flips the kernel spatially and swaps its in/out
    axes, making this exactly the gradient of ``Conv`` with that kernel.
    ``feature_group_count`` splits the channels into groups transposed separately
    (kernel ``(*kernel_size, in_features // groups, out_features)``).
    ``preferred_element_type``, ``promote_dtype`` and the ``*_metadata``
    arguments mean what they mean for :class:`Conv`.
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
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        transpose_kernel: bool = False,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("ConvTranspose", rngs, ctx)
        self.kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        n = len(self.kernel_size)
        where = f"ConvTranspose(kernel_size={self.kernel_size})"
        self.in_features = in_features
        self.out_features = out_features
        self.strides = per_axis(strides, n, "strides", where)
        self.padding = lax_padding(padding, n, where)
        if self.padding == "CAUSAL":
            raise ValueError(f"{where}: padding='CAUSAL' is not defined for a transposed convolution.")
        self.kernel_dilation = per_axis(kernel_dilation, n, "kernel_dilation", where)
        if in_features % feature_group_count or out_features % feature_group_count:
            raise ValueError(
                f"{where}: in_features={in_features} and out_features={out_features} must both be "
                f"divisible by feature_group_count={feature_group_count}."
            )
        if transpose_kernel and feature_group_count != 1:
            raise ValueError(f"{where}: transpose_kernel=True supports only feature_group_count=1.")
        self.feature_group_count = feature_group_count
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.preferred_element_type = preferred_element_type
        self.promote_dtype = promote_dtype
        self.transpose_kernel = transpose_kernel
        shape = (*self.kernel_size, in_features // feature_group_count, out_features)
        if transpose_kernel:
            shape = (*self.kernel_size, out_features, in_features)
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
        x, batch = flatten_batch(x, n, f"ConvTranspose(kernel_size={self.kernel_size})")
        circular = self.padding == "CIRCULAR"
        kernel = self.kernel[...] if self.mask is None else self.kernel[...] * self.mask
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, kernel, bias), dtype=self.dtype)
        padding = "VALID" if circular else self.padding
        if self.transpose_kernel:
            y = lax.conv_transpose(
                x,
                kernel,
                self.strides,
                padding,
                rhs_dilation=self.kernel_dilation,
                dimension_numbers=channels_last(n),
                transpose_kernel=True,
                **dot_options(self.precision, self.preferred_element_type),
            )
        else:
            # A transposed convolution is a convolution over the input spread out by the
            # strides (lhs_dilation); written this way it also takes feature groups.
            y = lax.conv_general_dilated(
                x,
                kernel,
                window_strides=(1,) * n,
                padding=self._dilated_input_padding(padding),
                lhs_dilation=self.strides,
                rhs_dilation=self.kernel_dilation,
                dimension_numbers=channels_last(n),
                feature_group_count=self.feature_group_count,
                **dot_options(self.precision, self.preferred_element_type),
            )
        if circular:
            y = self._wrap(y, tuple(d * s for d, s in zip(x.shape[1:-1], self.strides)))
        if bias is not None:
            y = y + bias
        return restore_batch(y, batch)

    def _dilated_input_padding(self, padding: str | list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Padding of the stride-dilated input for ``"SAME"``/``"VALID"`` (pairs pass through).

        ``"VALID"`` pads a dilated kernel extent ``k`` minus one on the low side so every
        overlap of kernel and input produces an output (output ``(in - 1) * s + k``);
        ``"SAME"`` pads so that the output is ``in * s``.
        """
        if not isinstance(padding, str):
            return padding
        pads: list[tuple[int, int]] = []
        for k, s in zip(dilated(self.kernel_size, self.kernel_dilation), self.strides):
            if padding == "SAME":
                total = k + s - 2
                low = k - 1 if s > k - 1 else -(-total // 2)
            else:
                total = k + s - 2 + max(k - s, 0)
                low = k - 1
            pads.append((low, total - low))
        return pads

    def _wrap(self, y: jax.Array, target: tuple[int, ...]) -> jax.Array:
        """Fold the full output periodically onto ``target`` sizes (summing the overhang).

        The full output is centred on the periodic grid: it is padded up to a
        multiple of twice the target size, split evenly on both sides (the odd
        element goes last, or first for a transposed kernel), then every period
        is summed onto the first.
        """
        pads = [(0, 0)]
        for size, period in zip(y.shape[1:-1], target):
            extra = -(size - period) % (2 * period)
            low = (extra + 1) // 2 if not self.transpose_kernel else extra // 2
            pads.append((low, extra - low))
        pads.append((0, 0))
        y = jnp.pad(y, pads)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
        for axis, period in enumerate(target, start=1):
            y = y.reshape((*y.shape[:axis], -1, period, *y.shape[axis + 1 :])).sum(axis)
        return y

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[ConvTranspose, ConvTransposeState]
