# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""A variational autoencoder on binarized 8x8 digits, its KL term captured as an ``Intermediate``.

The encoder records its KL divergence with seed 003's idiom
``self.kl_loss = nnx.Intermediate(kl)``; the loss pops it with
``nnx.pop(model, nnx.Intermediate)`` inside ``nnx.value_and_grad``, so it never
stays in the model's state. The reparameterisation noise comes from an
``Rngs`` stream held by the model, advancing through ``nnx.jit``.

Run: python examples/vae.py            (full run)
     python examples/vae.py --quick    (a few steps; what CI runs, also with NNX_EXAMPLES_QUICK=1)
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args
from _progress import progress

import nnx


def binarized_digits() -> np.ndarray[Any, Any]:
    """The 1797 scikit-learn digits as flat 0/1 vectors of 64 pixels."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # pyright: ignore[reportMissingTypeStubs]  # untyped

    bunch: Any = load_digits()
    return (np.asarray(bunch.data, np.float32) > 7.0).astype(np.float32)


class Encoder(nnx.Module):
    def __init__(self, din: int, hidden: int, latent: int, *, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(din, hidden, rngs=rngs)
        self.mean = nnx.Linear(hidden, latent, rngs=rngs)
        self.log_var = nnx.Linear(hidden, latent, rngs=rngs)
        self.noise = nnx.Rngs(noise=rngs.params())  # the sampling stream, part of the state

    def __call__(self, x: jax.Array, *, sample: bool = True) -> jax.Array:
        h = nnx.relu(self.hidden(x))
        mean, log_var = self.mean(h), self.log_var(h)
        kl = 0.5 * jnp.mean(jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1))
        self.kl_loss = nnx.Intermediate(kl)  # captured for the loss (seed 003)
        if not sample:
            return mean
        return mean + jnp.exp(0.5 * log_var) * jax.random.normal(self.noise.noise(), mean.shape)


class Decoder(nnx.Module):
    def __init__(self, latent: int, hidden: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(latent, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, dout, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        return self.out(nnx.relu(self.hidden(z)))  # Bernoulli logits per pixel


class VAE(nnx.Module):
    def __init__(self, din: int = 64, hidden: int = 128, latent: int = 8, *, rngs: nnx.Rngs) -> None:
        self.encoder = Encoder(din, hidden, latent, rngs=rngs)
        self.decoder = Decoder(latent, hidden, din, rngs=rngs)

    def __call__(self, x: jax.Array, *, sample: bool = True) -> jax.Array:
        return self.decoder(self.encoder(x, sample=sample))


def loss_fn(model: VAE, x: jax.Array, sample: bool = True) -> jax.Array:
    """Negative ELBO per image: reconstruction cross-entropy + the popped KL term."""
    logits = model(x, sample=sample)
    intermediates = nnx.pop(model, nnx.Intermediate)
    reconstruction: jax.Array = optax.sigmoid_binary_cross_entropy(logits, x).sum(-1).mean()  # optax: untyped
    kl: jax.Array = intermediates.encoder.kl_loss
    return reconstruction + kl


@nnx.jit
def train_step(model: VAE, optimizer: nnx.Optimizer, x: jax.Array) -> jax.Array:
    loss: jax.Array
    loss, grads = nnx.value_and_grad(loss_fn)(model, x)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def test_loss(model: VAE, x: jax.Array) -> jax.Array:
    loss: jax.Array = loss_fn(model, x, sample=False)
    return loss


def ascii_digit(pixels: np.ndarray[Any, Any]) -> str:
    return "\n".join("".join("#" if p > 0.5 else "." for p in row) for row in pixels.reshape(8, 8))


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv, full=2000, quick=100)
    steps = args.count

    data = binarized_digits()
    order = np.random.default_rng(0).permutation(len(data))
    test, train = jnp.asarray(data[order[:300]]), data[order[300:]]
    model = VAE(rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    initial = float(test_loss(model, test))

    rng = np.random.default_rng(1)
    start = time.perf_counter()
    bar = progress(range(steps), desc="vae", leave=False)
    for step in bar:
        loss = train_step(model, optimizer, jnp.asarray(train[rng.integers(0, len(train), 64)]))
        if step % 100 == 0:
            bar.set_postfix(loss=f"{float(loss):.2f}")
    seconds = time.perf_counter() - start
    final = float(test_loss(model, test))
    assert nnx.state(model, nnx.Intermediate).paths == (), "the KL term was popped in every step"

    reconstruction = jax.nn.sigmoid(model(test[:1], sample=False))
    nnx.pop(model, nnx.Intermediate)
    print("a test digit and its reconstruction:")
    for left, right in zip(ascii_digit(np.asarray(test[0])).split("\n"), ascii_digit(np.asarray(reconstruction[0])).split("\n")):
        print(f"  {left}    {right}")
    print(f"test negative ELBO {initial:.2f} -> {final:.2f} after {steps} steps in {seconds:.1f}s")
    assert final < initial - 5.0, "training did not lower the test loss"
    return {"initial": initial, "final": final}


if __name__ == "__main__":
    main()
