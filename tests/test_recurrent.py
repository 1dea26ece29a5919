"""nnx.LSTMCell, nnx.GRUCell and nnx.RNN: the recurrences, scanning, lengths, reverse; Flax parity."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, fnnx

import nnx
from typed_jax import jit

B, T, F, Hd = 3, 7, 4, 5
X = jax.random.normal(jax.random.key(0), (B, T, F))


def loop(cell: Any, xs: jax.Array) -> tuple[Any, jax.Array]:
    """The recurrence written as a Python loop over time (batch-major inputs)."""
    carry = cell.initialize_carry(xs[:, 0].shape)
    ys: list[jax.Array] = []
    for t in range(xs.shape[1]):
        carry, y = cell(carry, xs[:, t])
        ys.append(y)
    return carry, jnp.stack(ys, axis=1)


def test_lstm_cell_equations() -> None:
    cell = nnx.LSTMCell(F, Hd, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    c, h = jax.random.normal(jax.random.key(1), (2, B, Hd))
    x = X[:, 0]
    gates = x @ cell.input_kernel + h @ cell.recurrent_kernel + cell.bias
    i, f, g, o = (gates[:, k * Hd : (k + 1) * Hd] for k in range(4))
    new_c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    (got_c, got_h), y = cell((c, h), x)
    assert_close(got_c, new_c, atol=1e-5)
    assert_close(got_h, jax.nn.sigmoid(o) * jnp.tanh(new_c), atol=1e-5)
    assert_close(y, got_h)


def test_gru_cell_equations() -> None:
    cell = nnx.GRUCell(F, Hd, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    h = jax.random.normal(jax.random.key(1), (B, Hd))
    x = X[:, 0]
    xw, hw = x @ cell.input_kernel + cell.bias, h @ cell.recurrent_kernel
    part = [slice(k * Hd, (k + 1) * Hd) for k in range(3)]
    r = jax.nn.sigmoid(xw[:, part[0]] + hw[:, part[0]])
    z = jax.nn.sigmoid(xw[:, part[1]] + hw[:, part[1]])
    n = jnp.tanh(xw[:, part[2]] + r * hw[:, part[2]])
    new_h, _ = cell(h, x)
    assert_close(new_h, (1 - z) * n + z * h, atol=1e-5)


def test_recurrent_kernels_are_orthogonal_per_gate() -> None:
    cell = nnx.LSTMCell(F, Hd, rngs=nnx.Rngs(0))
    block = cell.recurrent_kernel[:, :Hd]
    assert_close(block.T @ block, jnp.eye(Hd), atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("make", [nnx.LSTMCell, nnx.GRUCell], ids=["lstm", "gru"])
def test_half_precision_params_initialise_in_float32_then_cast(make: Any, dtype: Any) -> None:
    # Regression: the orthogonal recurrent initializer calls QR, which has no
    # half-precision kernel, so construction raised NotImplementedError.
    cell = make(F, Hd, param_dtype=dtype, rngs=nnx.Rngs(0))
    wide = make(F, Hd, rngs=nnx.Rngs(0))
    for name in ("input_kernel", "recurrent_kernel", "bias"):
        assert getattr(cell, name).dtype == dtype
        assert_close(getattr(cell, name).astype(jnp.float32), getattr(wide, name).astype(dtype).astype(jnp.float32))
    block = cell.recurrent_kernel[:, :Hd].astype(jnp.float32)
    assert_close(block.T @ block, jnp.eye(Hd), atol=2e-2)  # orthogonal up to the cast
    carry = cell.initialize_carry(X[:, 0].shape)
    _, y = cell(carry, X[:, 0].astype(dtype))
    assert y.dtype == dtype


@pytest.mark.parametrize("make", [nnx.LSTMCell, nnx.GRUCell], ids=["lstm", "gru"])
def test_rnn_equals_the_python_loop(make: Any) -> None:
    cell = make(F, Hd, rngs=nnx.Rngs(0))
    carry, ys = loop(cell, X)
    rnn = nnx.RNN(cell, return_carry=True)
    got_carry, got = rnn(X)
    assert got.shape == (B, T, Hd)
    assert_close(got, ys, atol=1e-5)
    for a, b in zip(jax.tree.leaves(got_carry), jax.tree.leaves(carry)):
        assert_close(a, b, atol=1e-5)
    time_major = nnx.RNN(cell, time_major=True)(jnp.swapaxes(X, 0, 1))
    assert_close(jnp.swapaxes(time_major, 0, 1), ys, atol=1e-5)


def test_rnn_seq_lengths_freeze_the_carry() -> None:
    cell = nnx.GRUCell(F, Hd, rngs=nnx.Rngs(0))
    lengths = jnp.array([7, 3, 5])
    carry, _ = nnx.RNN(cell)(X, seq_lengths=lengths, return_carry=True)
    for b, n in enumerate([7, 3, 5]):
        expected, _ = loop(cell, X[b : b + 1, :n])
        assert_close(carry[b], expected[0], atol=1e-5)


def test_rnn_reverse_reads_each_valid_prefix_backwards() -> None:
    cell = nnx.GRUCell(F, Hd, rngs=nnx.Rngs(0))
    lengths = jnp.array([7, 3, 5])
    rnn = nnx.RNN(cell, reverse=True, keep_order=True)
    carry, ys = rnn(X, seq_lengths=lengths, return_carry=True)
    for b, n in enumerate([7, 3, 5]):
        expected_carry, expected = loop(cell, X[b : b + 1, :n][:, ::-1])
        assert_close(carry[b], expected_carry[0], atol=1e-5)
        assert_close(ys[b, :n], expected[0, ::-1], atol=1e-5)  # keep_order: back in input order


def test_rnn_carries_other_cell_state_through_the_scan() -> None:
    class NoisyCell(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.inner = nnx.GRUCell(F, Hd, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
            return self.inner(carry, self.dropout(x))

        def initialize_carry(self, input_shape: tuple[int, ...]) -> jax.Array:
            return self.inner.initialize_carry(input_shape)

    cell = NoisyCell(nnx.Rngs(0))
    ones = jnp.ones((B, T, F))
    nnx.RNN(cell)(ones)
    assert [int(c) for c in nnx.state(cell, nnx.RngCount).leaves] == [T]  # one key per step, written back


def test_rnn_under_jit_and_gradients() -> None:
    cell = nnx.LSTMCell(2, 3, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    def step_output(m: nnx.LSTMCell, x: jax.Array) -> jax.Array:
        out: jax.Array = m(m.initialize_carry(x.shape), x)[1]
        return out

    check_layer_grads(cell, jax.random.normal(jax.random.key(1), (1, 2)), call=step_output)
    rnn = nnx.RNN(nnx.GRUCell(2, 3, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(1), (1, 4, 2))

    # the carry keeps the dtype of the initial carry: give a float64 one for the float64 check
    def run_from_zeros(m: nnx.RNN, x: jax.Array) -> jax.Array:
        out: jax.Array = m(x, initial_carry=jnp.zeros((1, 3), x.dtype))
        return out

    check_layer_grads(rnn, x, call=run_from_zeros)
    graphdef, state = nnx.split(rnn)

    def apply(s: nnx.State[nnx.RNN], x: jax.Array) -> jax.Array:
        out: jax.Array = nnx.merge(graphdef, s)(x)
        return out

    y = jit(apply)(state, X[:, :, :2])
    assert_close(y, rnn(X[:, :, :2]), atol=1e-5)


def test_lstm_and_gru_match_flax() -> None:
    theirs_lstm = fnnx.LSTMCell(F, Hd, rngs=fnnx.Rngs(1))
    ours_lstm = nnx.LSTMCell(F, Hd, rngs=nnx.Rngs(0))
    gates = ("i", "f", "g", "o")
    ours_lstm.input_kernel[...] = jnp.concatenate([getattr(theirs_lstm, f"i{g}" if g != "f" else "if_").kernel[...] for g in gates], -1)
    ours_lstm.recurrent_kernel[...] = jnp.concatenate([getattr(theirs_lstm, f"h{g}").kernel[...] for g in gates], -1)
    ours_lstm.bias[...] = jnp.concatenate([getattr(theirs_lstm, f"h{g}").bias[...] for g in gates], -1)
    assert_close(nnx.RNN(ours_lstm)(X), fnnx.RNN(theirs_lstm)(X), atol=1e-5)

    theirs_gru = fnnx.GRUCell(F, Hd, rngs=fnnx.Rngs(1))
    ours_gru = nnx.GRUCell(F, Hd, rngs=nnx.Rngs(0))
    ours_gru.input_kernel[...] = theirs_gru.dense_i.kernel[...]
    ours_gru.bias[...] = theirs_gru.dense_i.bias[...]
    ours_gru.recurrent_kernel[...] = theirs_gru.dense_h.kernel[...]
    assert_close(nnx.RNN(ours_gru)(X), fnnx.RNN(theirs_gru)(X), atol=1e-5)
