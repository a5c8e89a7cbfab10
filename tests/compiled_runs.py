"""Helper for tests that train one model eagerly and with `jit_compile=True` and compare."""
import torch

import lamina


def eager_and_compiled_losses(build, x, y, optimizer, loss):
    """The `fit` losses of `build()` trained eagerly, then compiled (same seed, unshuffled
    batches of 16, 2 epochs), and how many graphs the compiled run traced. `optimizer`: a name,
    or a function that makes a fresh one (an optimizer serves one model)."""
    losses = []
    for jit in (False, True):
        lamina.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=optimizer if isinstance(optimizer, str) else optimizer(),
                      loss=loss, jit_compile=jit)
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        losses.append(model.fit(x, y, batch_size=16, epochs=2, shuffle=False,
                                verbose=0).history["loss"])
    return losses[0], losses[1], torch._dynamo.utils.counters["stats"]["unique_graphs"]
