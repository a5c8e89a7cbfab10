"""What `compile()` resolves: losses, loss weights and metrics matched to the model's outputs.

Outputs match by name for dicts and by position for lists; a single loss or metric list
applies to every output, as in Keras 2.
"""
import inspect

import torch

from lamina import losses as losses_module
from lamina import metrics as metrics_module


def _match(value, output_names, what):
    """`value` (single, list or dict) as one entry per output, by position or by name."""
    n = len(output_names)
    if isinstance(value, dict):
        unknown = set(value) - set(output_names)
        if unknown:
            raise ValueError(f"In `{what}`, keys {sorted(unknown)} do not match any model output. "
                             f"Expected keys among the output names: {output_names}")
        return [value.get(name) for name in output_names]
    if isinstance(value, (list, tuple)) and (n > 1 or len(value) == 1):
        if len(value) != n:
            raise ValueError(f"`{what}` has {len(value)} entries but the model has {n} outputs "
                             f"{output_names}. Received: {what}={value!r}")
        return list(value)
    return [value] * n


def flatten_targets(y, output_names, what="y"):
    """Targets (single array, list or dict by output name) as a list in output order."""
    if y is None:
        return [None] * len(output_names)
    if isinstance(y, dict):
        unknown = set(y) - set(output_names)
        if unknown:
            raise ValueError(f"Found unexpected keys {sorted(unknown)} in `{what}`: they do not "
                             f"match any model output. Expected keys: {output_names}")
        return [y.get(name) for name in output_names]
    if isinstance(y, (list, tuple)) and len(output_names) > 1:
        if len(y) != len(output_names):
            raise ValueError(f"`{what}` has {len(y)} arrays but the model has "
                             f"{len(output_names)} outputs {output_names}.")
        return list(y)
    if isinstance(y, (list, tuple)) and len(y) == 1:
        return [y[0]]
    return [y]


def flatten_outputs(y_pred):
    if isinstance(y_pred, dict):
        return [y_pred[k] for k in sorted(y_pred)]
    if isinstance(y_pred, (list, tuple)):
        return list(y_pred)
    return [y_pred]


def resolve_loss(identifier):
    if identifier is None:
        return None
    if inspect.isclass(identifier):
        identifier = identifier()
    if isinstance(identifier, losses_module.Loss):
        return identifier
    fn = losses_module.get(identifier)
    if isinstance(fn, losses_module.Loss):
        return fn
    if not callable(fn):
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
    return losses_module.LossFunctionWrapper(fn, name=getattr(fn, "__name__", "loss"))


class CompileLoss:
    """The weighted sum of per-output losses."""

    def __init__(self, loss, loss_weights, output_names):
        self.output_names = output_names
        self.losses = [resolve_loss(l) for l in _match(loss, output_names, "loss")]
        weights = _match(loss_weights, output_names, "loss_weights") if loss_weights is not None \
            else [None] * len(output_names)
        self.weights = [1.0 if w is None else float(w) for w in weights]
        self.active = [i for i, l in enumerate(self.losses) if l is not None]

    def __call__(self, targets, outputs, sample_weights):
        """Total loss and the per-output (unweighted) losses."""
        total, parts = None, []
        for i in self.active:
            if targets[i] is None:
                raise ValueError(
                    f"The model's output '{self.output_names[i]}' has a loss "
                    f"('{self.losses[i].name}'), which needs target values, but no targets "
                    "were given. Pass `y` to `fit`/`evaluate` (or yield `(x, y)` from your data).")
            output = outputs[i]
            if output.dtype in (torch.float16, torch.bfloat16):  # losses in float32, as Keras
                output = output.float()
            value = self.losses[i](targets[i], output, sample_weights[i])
            parts.append(value)
            weighted = value if self.weights[i] == 1.0 else value * self.weights[i]
            total = weighted if total is None else total + weighted
        return total, parts


def resolve_metric(identifier, y_true, y_pred):
    """A metric object named as Keras names it; "accuracy"/"acc" picks binary, sparse or
    categorical accuracy from the shapes of the targets and predictions."""
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        if y_pred.shape[-1] == 1:
            metric = metrics_module.BinaryAccuracy()
        elif y_true.dim() < y_pred.dim() or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1):
            metric = metrics_module.SparseCategoricalAccuracy()
        else:
            metric = metrics_module.CategoricalAccuracy()
    elif inspect.isclass(identifier):
        metric = identifier()
    elif isinstance(identifier, metrics_module.Metric):
        metric = identifier
    else:
        metric = metrics_module.get(identifier)
    if isinstance(identifier, str):
        metric.name = identifier
    return metric


class CompileMetrics:
    """Per-output metrics, resolved from the first batch's shapes, with Keras's log names."""

    def __init__(self, metrics, weighted_metrics, output_names):
        self.output_names = output_names
        self.specs = [self._per_output(metrics, "metrics"),
                      self._per_output(weighted_metrics, "weighted_metrics")]
        self.entries = None  # (output index, metric, weighted, log name)

    def _per_output(self, metrics, what):
        if metrics is None:
            return [[] for _ in self.output_names]
        if not isinstance(metrics, (list, tuple, dict)):
            metrics = [metrics]
        if isinstance(metrics, dict):
            per = _match(metrics, self.output_names, what)
        elif len(self.output_names) > 1 and metrics and all(
                isinstance(m, (list, tuple)) or m is None for m in metrics):
            per = _match(list(metrics), self.output_names, what)
        else:
            per = [list(metrics)] * len(self.output_names)
        return [[] if m is None else (list(m) if isinstance(m, (list, tuple)) else [m])
                for m in per]

    def build(self, targets, outputs, device):
        entries, seen = [], set()
        multi = len(self.output_names) > 1
        unweighted = [set() for _ in self.output_names]  # names a weighted twin is told from
        for weighted, spec in enumerate(self.specs):
            for i, identifiers in enumerate(spec):
                for identifier in identifiers:
                    if targets[i] is None:
                        continue
                    metric = resolve_metric(identifier, targets[i], outputs[i])
                    metric.to(device)
                    metric.reset_state()  # a metric object given again, to another model
                    name = metric.name
                    if not weighted:
                        unweighted[i].add(name)
                    elif name in unweighted[i]:
                        name = f"weighted_{name}"
                    name = f"{self.output_names[i]}_{name}" if multi else name
                    base, k = name, 1
                    while name in seen:
                        name, k = f"{base}_{k}", k + 1
                    seen.add(name)
                    entries.append((i, metric, bool(weighted), name))
        self.entries = entries

    @torch.no_grad()
    def update(self, targets, outputs, sample_weights):
        for i, metric, weighted, _ in self.entries:
            metric.update_state(targets[i], outputs[i], sample_weights[i] if weighted else None)

    def reset(self):
        for _, metric, _, _ in self.entries or ():
            metric.reset_state()

    def results(self):
        return {name: metric.result() for _, metric, _, name in self.entries or ()}

    @property
    def metrics(self):
        return [metric for _, metric, _, _ in self.entries or ()]
