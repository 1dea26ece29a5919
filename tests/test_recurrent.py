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

    def gate(from_x: nnx.Linear, from_h: nnx.Linear) -> jax.Array:
        assert from_x.bias is None and from_h.bias is not None  # one bias per gate, on the h side (Flax's layout)
        out: jax.Array = x @ from_x.kernel[...] + h @ from_h.kernel[...] + from_h.bias[...]
        return out

    i, f = gate(cell.ii, cell.hi), gate(cell.if_, cell.hf)
    g, o = gate(cell.ig, cell.hg), gate(cell.io, cell.ho)
    new_c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    (got_c, got_h), y = cell((c, h), x)
    assert_close(got_c, new_c, atol=1e-5)
    assert_close(got_h, jax.nn.sigmoid(o) * jnp.tanh(new_c), atol=1e-5)
    assert_close(y, got_h)


def test_gru_cell_equations() -> None:
    cell = nnx.GRUCell(F, Hd, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    h = jax.random.normal(jax.random.key(1), (B, Hd))
    x = X[:, 0]
    assert cell.dense_i.bias is not None and cell.dense_h.bias is None  # Flax's layout: the bias reads x
    xw, hw = x @ cell.dense_i.kernel[...] + cell.dense_i.bias[...], h @ cell.dense_h.kernel[...]
    part = [slice(k * Hd, (k + 1) * Hd) for k in range(3)]
    r = jax.nn.sigmoid(xw[:, part[0]] + hw[:, part[0]])
    z = jax.nn.sigmoid(xw[:, part[1]] + hw[:, part[1]])
    n = jnp.tanh(xw[:, part[2]] + r * hw[:, part[2]])
    new_h, _ = cell(h, x)
    assert_close(new_h, (1 - z) * n + z * h, atol=1e-5)


def test_cells_keep_flax_parameter_layout() -> None:
    lstm = nnx.LSTMCell(F, Hd, rngs=nnx.Rngs(0))
    gates = ("ii", "if_", "ig", "io", "hi", "hf", "hg", "ho")
    expected = {(g, "kernel") for g in gates} | {(g, "bias") for g in gates[4:]}
    assert set(nnx.state(lstm, nnx.Param).paths) == expected
    assert lstm.ii.kernel.shape == (F, Hd) and lstm.hi.kernel.shape == (Hd, Hd)
    gru = nnx.GRUCell(F, Hd, rngs=nnx.Rngs(0))
    assert set(nnx.state(gru, nnx.Param).paths) == {("dense_i", "kernel"), ("dense_i", "bias"), ("dense_h", "kernel")}
    assert gru.dense_i.kernel.shape == (F, 3 * Hd) and gru.dense_h.kernel.shape == (Hd, 3 * Hd)


def test_recurrent_kernels_are_orthogonal() -> None:
    cell = nnx.LSTMCell(F, Hd, rngs=nnx.Rngs(0))
    block = cell.hi.kernel[...]
    assert_close(block.T @ block, jnp.eye(Hd), atol=1e-5)


def _cell_params(cell: nnx.Module) -> dict[Any, jax.Array]:
    params = nnx.state(cell, nnx.Param)
    return dict(zip(params.paths, params.leaves))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("make", [nnx.LSTMCell, nnx.GRUCell], ids=["lstm", "gru"])
def test_half_precision_params_initialise_in_float32_then_cast(make: Any, dtype: Any) -> None:
    # Regression: the orthogonal recurrent initializer calls QR, which has no
    # half-precision kernel, so construction raised NotImplementedError.
    cell = make(F, Hd, param_dtype=dtype, rngs=nnx.Rngs(0))
    wide = make(F, Hd, rngs=nnx.Rngs(0))
    half_params, wide_params = _cell_params(cell), _cell_params(wide)
    assert half_params.keys() == wide_params.keys()
    for path, value in half_params.items():
        assert value.dtype == dtype, path
        assert_close(value.astype(jnp.float32), wide_params[path].astype(dtype).astype(jnp.float32))
    recurrent = (cell.hi if make is nnx.LSTMCell else cell.dense_h).kernel[...][:, :Hd].astype(jnp.float32)
    if make is nnx.LSTMCell:  # GRU's recurrent kernel is orthogonal as a whole (Hd, 3 Hd), as in Flax
        assert_close(recurrent.T @ recurrent, jnp.eye(Hd), atol=2e-2)  # orthogonal up to the cast
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
    # The same layout as Flax, so the parameters copy over path for path.
    for ours, theirs in (
        (nnx.LSTMCell(F, Hd, rngs=nnx.Rngs(0)), fnnx.LSTMCell(F, Hd, rngs=fnnx.Rngs(1))),
        (nnx.GRUCell(F, Hd, rngs=nnx.Rngs(0)), fnnx.GRUCell(F, Hd, rngs=fnnx.Rngs(1))),
    ):
        flax_params = fnnx.state(theirs, fnnx.Param)
        flat = {path: value[...] for path, value in fnnx.to_flat_state(flax_params)}
        assert set(flat) == set(nnx.state(ours, nnx.Param).paths)
        nnx.update(ours, nnx.State.from_flat_state(flat))
        assert_close(nnx.RNN(ours)(X), fnnx.RNN(theirs)(X), atol=1e-5)


class _MaskedCell(nnx.Module):
    """A cell whose output is its dropout mask on ones: shows which keys each step drew."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.drop = nnx.Dropout(0.5, rng_collection="recurrent_dropout", rngs=rngs)

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return carry, self.drop(jnp.ones_like(x))

    def initialize_carry(self, input_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(input_shape[:-1])


def test_rnn_broadcast_rngs_draws_one_key_per_call() -> None:
    # Flax's RNN(broadcast_rngs=...): the named streams give every step the same keys
    # (one recurrent-dropout mask for the whole sequence) and advance once per call.
    cell = _MaskedCell(nnx.Rngs(0, recurrent_dropout=1))
    stream = cell.drop.rngs
    assert stream is not None
    rnn = nnx.RNN(cell, broadcast_rngs="recurrent_dropout")
    xs = jnp.ones((2, 6, 16))
    first = rnn(xs)
    for t in range(1, 6):
        assert_close(first[:, t], first[:, 0])  # the same mask at every step
    assert int(stream.count.value) == 1
    second = rnn(xs)
    assert int(stream.count.value) == 2
    assert not jnp.array_equal(first[:, 0], second[:, 0])  # a new key on the next call
    # without broadcasting, each step draws its own key: masks differ along time
    plain_cell = _MaskedCell(nnx.Rngs(0, recurrent_dropout=1))
    plain = nnx.RNN(plain_cell)(xs)
    assert any(not jnp.array_equal(plain[:, t], plain[:, 0]) for t in range(1, 6))
    assert plain_cell.drop.rngs is not None and int(plain_cell.drop.rngs.count.value) == 6


def test_rnn_broadcast_rngs_under_jit_matches_eager() -> None:
    eager_cell = _MaskedCell(nnx.Rngs(0, recurrent_dropout=1))
    jitted_cell = nnx.clone(eager_cell)
    xs = jnp.ones((2, 4, 8))
    expected = nnx.RNN(eager_cell, broadcast_rngs="recurrent_dropout")(xs)
    rnn = nnx.RNN(jitted_cell, broadcast_rngs="recurrent_dropout")

    @nnx.jit
    def run(m: nnx.RNN, xs: jax.Array) -> jax.Array:
        out: jax.Array = m(xs)
        return out

    assert_close(run(rnn, xs), expected)
    assert jitted_cell.drop.rngs is not None and int(jitted_cell.drop.rngs.count.value) == 1
