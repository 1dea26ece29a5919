"""Library layers' cells: assigning an array over a cell, or indexing a maybe-None bias, is an error."""

import jax.numpy as jnp

import nnx

linear = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
linear.kernel = jnp.zeros((2, 3))  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]  # replaces the cell: write linear.kernel[...] = ...
linear.bias[...]  # type: ignore[index]  # pyright: ignore[reportOptionalSubscript]  # None without use_bias
linear.kernel.get_metadata("a", None, 3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
