"""The training loop behind `compile`/`fit`/`evaluate`/`predict`.

One step function per mode, closed over the model, the resolved losses and metrics and the
optimizer. Everything a step touches stays on the device: loss sums and metric states are
tensors, read back only at epoch ends and when a callback asks for batch logs.
"""
import functools
import itertools
import numbers
import traceback
import types
import warnings

import torch

from lamina import distribution
from lamina import optimizers as optimizers_module
from lamina.engine import keras_tensor as kt
from lamina.engine.layer import Layer, _CallContext, _keras_view, module_device
from lamina.training import data_adapter, rebatch
from lamina.training.compile_utils import (CompileLoss, CompileMetrics, flatten_outputs,
                                           flatten_targets)


UNROLL = 4  # train steps per compiled call, at most, under `steps_per_execution` > 1: on the
# MLP, 4 ran 1.2-1.4x faster than 1 a step, 16 little more, and compile time grows with them


def _flush_denormals(fn):
    """Run `fn` with denormal floats flushed to zero, as TensorFlow and XLA do on CPU: training
    that drifts into denormals otherwise runs many times slower."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        outermost = not _flush_denormals.active
        if outermost:
            _flush_denormals.active = torch.set_flush_denormal(True)
        try:
            return fn(*args, **kwargs)
        finally:
            if outermost and _flush_denormals.active:
                torch.set_flush_denormal(False)
                _flush_denormals.active = False
    return wrapper


_flush_denormals.active = False


class _MeanTracker:
    """A running mean weighted by batch size, kept in two device tensors updated in place."""

    def __init__(self, name):
        self.name = name
        self.total = self.count = None

    def update(self, value, count):
        if self.total is None:
            self.total = torch.zeros((), device=value.device)
            self.count = torch.zeros((), device=value.device)
        self.total.add_(value.detach(), alpha=count)
        self.count.add_(count)

    def result(self):
        if self.total is None:
            return torch.tensor(0.0)
        return self.total / self.count.clamp_min(1)

    @property
    def variables(self):
        return [] if self.total is None else [self.total, self.count]

    def reset(self):
        if self.total is not None:
            self.total.zero_()
            self.count.zero_()


def _batch_size(structure):
    for leaf in kt.flatten(structure):
        if leaf is not None and hasattr(leaf, "shape") and len(leaf.shape):
            return int(leaf.shape[0])
    return 1


def _logs_to_floats(logs):
    out = {}
    for key, value in logs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = value.item() if value.numel() == 1 else value.numpy()
        out[key] = value
    return out


def _resolve_verbose(verbose):
    return 1 if verbose == "auto" else int(verbose)


def _check_input_shapes(model, x):
    """Compare a first batch with a functional model's declared input shapes (once per call)."""
    try:
        specs = model.inputs
    except AttributeError:
        return
    flat = model._flatten_inputs(x) if hasattr(model, "_flatten_inputs") else kt.flatten(x)
    for i, (value, spec) in enumerate(zip(flat, specs)):
        shape = tuple(value.shape)
        expected = spec.shape
        if len(shape) != len(expected) or any(
                e is not None and e != s for e, s in zip(expected[1:], shape[1:])):
            raise ValueError(f"Input {i} of layer '{model.name}' is incompatible with the layer: "
                             f"expected shape={expected}, found shape={shape}")


class Trainer:
    def __init__(self, model, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                 weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                 jit_compile=False, auto_scale_loss=True, **kwargs):
        unknown = set(kwargs) - {"sample_weight_mode", "target_tensors"}
        if unknown:
            raise TypeError(f"compile() got unexpected keyword arguments: {sorted(unknown)}")
        self.model = model
        self.optimizer = optimizers_module.get(optimizer)
        if (auto_scale_loss and model.dtype_policy.name == "mixed_float16"
                and self.optimizer is not None
                and not isinstance(self.optimizer, optimizers_module.LossScaleOptimizer)):
            self.optimizer = optimizers_module.LossScaleOptimizer(self.optimizer,
                                                                  name="loss_scale_optimizer")
        names = list(model.output_names)
        self.output_names = names
        self.compile_loss = CompileLoss(loss, loss_weights, names) if loss is not None else None
        self.compile_metrics = CompileMetrics(metrics, weighted_metrics, names)
        self.loss_tracker = _MeanTracker("loss")
        multi = self.compile_loss is not None and len(self.compile_loss.active) > 1
        self.output_loss_trackers = ([_MeanTracker(f"{names[i]}_loss")
                                      for i in self.compile_loss.active] if multi else [])
        self.run_eagerly = run_eagerly
        self.steps_per_execution = _positive_int(steps_per_execution, "steps_per_execution")
        self.jit_compile = False if jit_compile == "auto" else jit_compile  # as Keras on torch
        self._drop_compiled()
        self._runner = model  # the model, or its DistributedDataParallel wrapper when training
        self._prepared_for = None
        self._traced_settings = None  # the optimizer settings the compiled train step holds
        self._has_trainable = False
        self._class_weight = None

    def set_option(self, name, value):
        """Change `run_eagerly`, `jit_compile` or `steps_per_execution` after `compile()`."""
        if name == "steps_per_execution":
            value = _positive_int(value, name)
        if name == "jit_compile" and value == "auto":
            value = False
        setattr(self, name, value)
        self._drop_compiled()

    def _drop_compiled(self):
        """Forget compiled steps: the next call prepares them again, if `jit_compile` holds
        (never with `run_eagerly`, as in Keras)."""
        if self.jit_compile and self.run_eagerly:
            warnings.warn("If `run_eagerly` is True, then `jit_compile` cannot also be True. "
                          "Disabling `jit_compile`.", stacklevel=4)
            self.jit_compile = False
        self._compiled_train = self._compiled_test = self._compiled_group = None
        self._compiled_predict = None

    # ------------------------------------------------------------------ preparation
    @property
    def metrics(self):
        return [self.loss_tracker] + self.output_loss_trackers + self.compile_metrics.metrics

    @property
    def metrics_names(self):
        """The log names, in the order `evaluate` lists values (metrics named per output)."""
        return list(self._logs())

    def _first_batch(self, x, training=True):
        """Check the data against the model's inputs, build a deferred model, then prepare."""
        _check_input_shapes(self.model, x)
        if not self.model.built:
            with torch.no_grad():
                self.model(x, training=False)
        self._prepare(training)
        if training and distribution.is_distributed() and self._runner is self.model:
            from torch.nn.parallel import DistributedDataParallel

            device = module_device(self.model)
            self._runner = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
            distribution.release_at_exit(self)

    def unwrap(self):
        """Run the model itself again, dropping its `DistributedDataParallel` wrapper."""
        self._runner = self.model

    def _prepare(self, training=True):
        """Collect the trainable weights, regularizers and constraints once per call."""
        model = self.model
        if training:
            trainable = [p for p in model.trainable_weights if p.requires_grad]
            self._has_trainable = bool(trainable)
            key = tuple(id(p) for p in trainable)
            if trainable and key != self._prepared_for:
                self.optimizer.build(trainable)
                self._prepared_for = key
                self._compiled_train = None  # a whole compiled step updates a fixed weight list
            if self.jit_compile:
                settings = self.optimizer._traced_settings()
                if settings != self._traced_settings:  # e.g. a new momentum, or a schedule
                    self._traced_settings = settings
                    self._compiled_train = None
        self._regularized, self._constrained = [], []
        for layer in model._flatten_layers():
            for record in layer._weight_records:
                if record.regularizer is not None:
                    self._regularized.append((layer, record))
                if record.constraint is not None and record.trainable:
                    self._constrained.append((layer, record))
        if self.jit_compile:
            if self._compiled_test is None:
                self._compiled_test = _compile(self._test_forward, module_device(model),
                                               inference=True)
            if training and self._compiled_train is None:
                self._compiled_train = self._compile_train_step(trainable)

    def _compile_train_step(self, trainable):
        """The whole train step as one graph (`_whole_train_step`) where it can be; else the
        forward and the update compiled apart around an eager backward (DDP hooks into
        autograd's backward)."""
        device = module_device(self.model)
        split = functools.partial(self._backward_step,
                                  forward=_compile(self._train_forward, device),
                                  step=_compile(self.optimizer.step, device))
        self._compiled_group = None
        if not trainable or distribution.is_distributed():
            return split
        self._loss_module = _LossOf(self)
        names = {id(p): name for name, p in self._loss_module.named_parameters()}
        if any(id(p) not in names for p in trainable):
            return split
        self._trainable, self._trainable_names = trainable, [names[id(p)] for p in trainable]
        step = _compile(self._whole_train_step, device, fullgraph=True, fallback=split,
                        guards=_step_guards, static=self._step_state)
        if self.steps_per_execution > 1:
            self._compiled_group = _compile(self._whole_train_steps, device, fullgraph=True,
                                            fallback=self._each_step, guards=_step_guards,
                                            static=self._step_state)
        return step

    def _step_state(self):
        """The tensors a whole train step updates in place besides the model's weights and
        buffers: the optimizer's and the metrics' state."""
        tensors = list(self.optimizer._step_tensors())
        for metric in self.metrics:
            tensors += metric.variables
        return tensors

    def _class_weight_table(self, class_weight, sample_weight, device):
        """`{class: weight}` as a device lookup table, for the training steps of one call."""
        if not class_weight:
            return None
        if sample_weight is not None:
            raise ValueError("`class_weight` and `sample_weight` cannot be given at the same "
                             f"time. Received: class_weight={class_weight}, sample_weight of "
                             f"type {type(sample_weight).__name__}")
        if len(self.output_names) > 1:
            raise ValueError("`class_weight` is only supported for models with a single output; "
                             f"model '{self.model.name}' has {len(self.output_names)}: "
                             f"{self.output_names}. Pass `sample_weight` instead.")
        table = torch.ones(max(int(k) for k in class_weight) + 1, device=device)
        for k, v in class_weight.items():
            table[int(k)] = float(v)
        return table

    # ------------------------------------------------------------------ steps
    def _sample_weights(self, y_flat, sample_weight, training):
        """One weight array (or None) per output. Class weights weigh the training loss only;
        `_class_weight_table` made sure there is one output and no `sample_weight`."""
        if training and self._class_weight is not None:
            return [_class_weights(self._class_weight, y_flat[0])]
        if sample_weight is None:
            return [None] * len(self.output_names)
        if isinstance(sample_weight, (dict, list, tuple)):
            return flatten_targets(sample_weight, self.output_names, "sample_weight")
        return [sample_weight] * len(self.output_names)

    def _forward_and_loss(self, x, y, sample_weight, training):
        y_pred = (self._runner if training else self.model)(x, training=training)
        outputs = flatten_outputs(y_pred)
        targets = flatten_targets(y, self.output_names)
        weights = self._sample_weights(targets, sample_weight, training)
        total, parts = (self.compile_loss(targets, outputs, weights)
                        if self.compile_loss is not None else (None, []))
        extra = list(_CallContext.losses)
        for layer, record in self._regularized:
            extra.append(record.regularizer(_keras_view(getattr(layer, record.key), record.layout)))
        for value in extra:
            total = value if total is None else total + value
        if total is None:
            raise ValueError(f"Model '{self.model.name}' has no loss to optimize: pass `loss` to "
                             "`compile()` or call `self.add_loss()` in the model.")
        return total, parts, targets, outputs, weights

    def _record(self, total, parts, targets, outputs, weights, batch_size):
        if self.compile_metrics.entries is None:
            self.compile_metrics.build(targets, outputs, total.device)
        with torch.no_grad():
            self.loss_tracker.update(total, batch_size)
            for tracker, value in zip(self.output_loss_trackers, parts):
                tracker.update(value, batch_size)
            detached = [o.detach() for o in outputs]
            self.compile_metrics.update(targets, detached, weights)

    def _train_forward(self, x, y, sample_weight):
        total, parts, targets, outputs, weights = self._forward_and_loss(x, y, sample_weight, True)
        self._record(total, parts, targets, outputs, weights, _batch_size(x))
        return total

    def _test_forward(self, x, y, sample_weight):
        total, parts, targets, outputs, weights = self._forward_and_loss(x, y, sample_weight, False)
        self._record(total, parts, targets, outputs, weights, _batch_size(x))

    def _whole_train_step(self, x, y, sample_weight):
        """The train step as one function of the batch for `torch.compile` to trace into a single
        graph: forward, loss, gradients (`torch.func.grad` over the trainable weights), metric
        updates and the optimizer update. Buffers go in as arguments, so that layers may update
        them in place (BatchNormalization's moving statistics)."""
        module, names, trainable = self._loss_module, self._trainable_names, self._trainable
        buffers = dict(module.named_buffers())
        optimizer = self.optimizer

        def loss_and_outputs(values, buffers):
            total, parts, _, outputs, _ = torch.func.functional_call(
                module, (dict(zip(names, values)), buffers), (x, y, sample_weight))
            return (optimizer.scale_loss(total),
                    (total.detach(), [p.detach() for p in parts], [o.detach() for o in outputs]))

        _CallContext.keep_losses = False  # `add_loss` tensors: counted in the loss, not kept
        try:
            grads, (total, parts, outputs) = torch.func.grad(loss_and_outputs, has_aux=True)(
                [p.detach() for p in trainable], buffers)
        finally:
            _CallContext.keep_losses = True
        _CallContext.losses = []
        targets = flatten_targets(y, self.output_names)
        weights = self._sample_weights(targets, sample_weight, True)
        self._record(total, parts, targets, outputs, weights, _batch_size(x))
        optimizer.apply(grads, trainable)
        self._apply_constraints()

    def _whole_train_steps(self, batches):
        """Whole train steps, one per batch, traced into one graph."""
        for x, y, sample_weight in batches:
            self._whole_train_step(x, y, sample_weight)

    def _each_step(self, batches):
        for x, y, sample_weight in batches:
            self.train_step(x, y, sample_weight)

    @property
    def _unroll(self):
        """Batches per call of the train step(s): more than one under a compiled group."""
        return 1 if self._compiled_group is None else min(UNROLL, self.steps_per_execution)

    def train_steps(self, batches):
        """A train step on each batch: in one compiled call when `jit_compile` and
        `steps_per_execution` allow it and the batches have one shape."""
        if (self._compiled_group is not None and self.compile_metrics.entries is not None
                and len({_batch_size(b[0]) for b in batches}) == 1):
            self.optimizer._evaluate_callable_learning_rate()
            self._compiled_group(batches)
        else:
            self._each_step(batches)

    def train_step(self, x, y, sample_weight):
        """Forward, loss and metric updates, backward, optimizer step: all on the device."""
        if self._compiled_train is not None and self.compile_metrics.entries is not None:
            self.optimizer._evaluate_callable_learning_rate()
            self._compiled_train(x, y, sample_weight)
        else:
            self._backward_step(x, y, sample_weight, self._train_forward, self.optimizer.step)

    def _backward_step(self, x, y, sample_weight, forward, step):
        """`forward` (loss and metric updates), backward through autograd, then `step`."""
        total = forward(x, y, sample_weight)
        if self._has_trainable:
            self.optimizer.zero_grad(set_to_none=True)
            self.optimizer.scale_loss(total).backward()  # a LossScaleOptimizer's `step` unscales
            step()
        self._apply_constraints()

    @torch.no_grad()
    def _apply_constraints(self):
        for layer, record in self._constrained:
            tensor = getattr(layer, record.key)
            _keras_view(tensor, record.layout).copy_(
                record.constraint(_keras_view(tensor, record.layout)))

    def _predict_forward(self, x):
        return self.model(x, training=False)

    def predict_function(self):
        """The forward pass of `predict`: compiled with `jit_compile=True` (as Keras compiles
        its predict function) once the model is built."""
        if not (self.jit_compile and self.model.built):
            return self._predict_forward
        if self._compiled_predict is None:
            self._compiled_predict = _compile(self._predict_forward, module_device(self.model),
                                              inference=True)
        return self._compiled_predict

    @torch.no_grad()
    def test_step(self, x, y, sample_weight):
        compiled = self._compiled_test is not None and self.compile_metrics.entries is not None
        (self._compiled_test if compiled else self._test_forward)(x, y, sample_weight)

    # ------------------------------------------------------------------ logs
    def _reset_metrics(self):
        self.loss_tracker.reset()
        for tracker in self.output_loss_trackers:
            tracker.reset()
        self.compile_metrics.reset()

    def _global_logs(self):
        """Epoch logs as floats; across processes, metric states are summed first."""
        if distribution.is_distributed():
            states = []
            for tracker in [self.loss_tracker] + self.output_loss_trackers:
                states += [tracker.total, tracker.count]
            for metric in self.compile_metrics.metrics:
                states += list(metric.variables)
            distribution.all_reduce_sum_(states)
        return _logs_to_floats(self._logs())

    def _logs(self):
        logs = {"loss": self.loss_tracker.result()}
        for tracker in self.output_loss_trackers:
            logs[tracker.name] = tracker.result()
        logs.update(self.compile_metrics.results())
        return logs

    # ------------------------------------------------------------------ fit
    @_flush_denormals
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        from lamina.callbacks import CallbackList

        model = self.model
        device = module_device(model)
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = data_adapter.split_validation(
                x, y, sample_weight, validation_split)
        distributed = distribution.maybe_initialize()
        adapter = data_adapter.get_adapter(x, y, sample_weight, batch_size=batch_size,
                                           shuffle=shuffle, steps=steps_per_epoch, device=device,
                                           seed=distribution.broadcast_seed() if distributed else None)
        val_adapter = None
        if validation_data is not None:
            vx, vy, vsw = data_adapter.unpack_x_y_sample_weight(validation_data)
            if not data_adapter.holds_no_samples(vx):  # else no validation, as in Keras
                val_adapter = data_adapter.get_adapter(
                    vx, vy, vsw, batch_size=validation_batch_size or batch_size,
                    steps=validation_steps, device=device)
        self._class_weight = self._class_weight_table(class_weight, sample_weight, device)
        verbose = _resolve_verbose(verbose)
        callbacks = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                 model=model, verbose=verbose, epochs=epochs, steps=adapter.steps)
        model.stop_training = False
        callbacks.on_train_begin()
        initial_epoch = getattr(model, "_initial_epoch", None) or initial_epoch
        model._initial_epoch = None
        wants_begin = callbacks.wants_batch_hook("on_train_batch_begin")
        wants_end = callbacks.wants_batch_hook("on_train_batch_end")
        checked = False
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callbacks.on_epoch_begin(epoch)
            _set_torch_mode(model, True)  # again each epoch: a callback may have predicted
            for begin, end, batches in _executions(_local_batches(adapter),
                                                   self.steps_per_execution):
                if wants_begin:
                    callbacks.on_train_batch_begin(begin)
                run = []  # batches for one call of the step(s)
                for batch in batches:
                    if not checked:
                        self._first_batch(batch[0])
                        checked = True
                    run.append(batch)
                    if len(run) == self._unroll:
                        self.train_steps(run)
                        run = []
                self._each_step(run)
                if wants_end:
                    callbacks.on_train_batch_end(end, self._logs())
                if model.stop_training:
                    break
            epoch_logs = self._global_logs()
            if val_adapter is not None and _validates(epoch, validation_freq):
                val_logs = self._evaluate_loop(val_adapter, callbacks)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            adapter.on_epoch_end()
            if model.stop_training:
                break
        _set_torch_mode(model, False)
        callbacks.on_train_end(epoch_logs)
        return model.history

    # ------------------------------------------------------------------ evaluate
    def _evaluate_loop(self, adapter, callbacks, prepare=False):
        _set_torch_mode(self.model, False)
        self._reset_metrics()
        callbacks.on_test_begin()
        wants_begin = callbacks.wants_batch_hook("on_test_batch_begin")
        wants_end = callbacks.wants_batch_hook("on_test_batch_end")
        for begin, end, batches in _executions(_local_batches(adapter), self.steps_per_execution):
            if wants_begin:
                callbacks.on_test_batch_begin(begin)
            for xb, yb, swb in batches:
                if prepare:
                    self._first_batch(xb, training=False)
                    prepare = False
                self.test_step(xb, yb, swb)
            if wants_end:
                callbacks.on_test_batch_end(end, self._logs())
        logs = self._global_logs()
        callbacks.on_test_end(logs)
        return logs

    @_flush_denormals
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        from lamina.callbacks import CallbackList

        model = self.model
        adapter = data_adapter.get_adapter(x, y, sample_weight, batch_size=batch_size,
                                           steps=steps, device=module_device(model))
        verbose = _resolve_verbose(verbose)
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=model,
                                 verbose=verbose, epochs=1, steps=adapter.steps)
        logs = self._evaluate_loop(adapter, callbacks, prepare=True)
        return _returned_logs(logs, return_dict)

    # ------------------------------------------------------------------ on batch
    @_flush_denormals
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        device = module_device(self.model)
        x, y, sample_weight = [data_adapter.structure_to_device(v, device)
                               for v in (x, y, sample_weight)]
        self._first_batch(x)
        self._reset_metrics()
        self._class_weight = self._class_weight_table(class_weight, sample_weight, device)
        _set_torch_mode(self.model, True)
        try:
            self.train_step(x, y, sample_weight)
        finally:
            _set_torch_mode(self.model, False)
        logs = _logs_to_floats(self._logs())
        return _returned_logs(logs, return_dict)

    @_flush_denormals
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        device = module_device(self.model)
        x, y, sample_weight = [data_adapter.structure_to_device(v, device)
                               for v in (x, y, sample_weight)]
        self._first_batch(x, training=False)
        self._reset_metrics()
        _set_torch_mode(self.model, False)
        self.test_step(x, y, sample_weight)
        logs = _logs_to_floats(self._logs())
        return _returned_logs(logs, return_dict)


def _set_torch_mode(model, training):
    """Put the plain torch modules inside `model` (not lamina layers) in training or evaluation
    mode. A step passes `training` to every lamina layer it calls; a layer's own flag is what a
    call without `training` falls back to, so `model(x)` in a callback during `fit`, or after
    `train_on_batch`, runs in inference mode, as in Keras."""
    pending = [model]
    while pending:  # `modules()` without its names and duplicate checks: 5x faster
        for module in pending.pop()._modules.values():
            if module is not None:
                if not isinstance(module, Layer) and module.training != training:
                    module.training = training
                pending.append(module)


class _LossOf(torch.nn.Module):
    """A trainer's training loss as a module of the model's weights, for `functional_call`."""

    def __init__(self, trainer):
        super().__init__()
        self.model = trainer.model
        self.forward_and_loss = trainer._forward_and_loss

    def forward(self, x, y, sample_weight):
        return self.forward_and_loss(x, y, sample_weight, True)


def _local_batches(adapter):
    """The adapter's batches, each cut to this process's slice when training distributed."""
    if not distribution.is_distributed() or getattr(adapter, "per_process", False):
        return iter(adapter)
    return ((distribution.shard(x), distribution.shard(y), distribution.shard(sw))
            for x, y, sw in adapter)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _executions(batches, size):
    """`batches` grouped `size` at a time, as Keras's `steps_per_execution` groups them: yields
    (first step, last step, the group's batches) and batch callbacks run once per group, the
    end hook with the group's last step (`first + size - 1`, as Keras numbers a short last
    group too). The batches are read lazily: a group is not held in memory."""
    batches = iter(batches)
    for begin in itertools.count(0, size):
        group = itertools.islice(batches, size)
        first = next(group, None)
        if first is None:
            return
        yield begin, begin + size - 1, itertools.chain([first], group)


def _validates(epoch, validation_freq):
    """Keras's `validation_freq`: every n-th epoch, or the epochs (counted from 1) listed."""
    if isinstance(validation_freq, numbers.Integral):
        return (epoch + 1) % validation_freq == 0
    if isinstance(validation_freq, (list, tuple, set, range)):
        return epoch + 1 in validation_freq
    raise ValueError("`validation_freq` must be an integer or a list of epochs (counted from 1). "
                     f"Received: validation_freq={validation_freq!r}")


def _class_weights(table, labels):
    """Each sample's class weight: its class is the argmax of one-hot labels, else the rounded
    label; a class the table does not list weighs 1."""
    if labels.dim() > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(dim=-1)
    labels = labels.reshape(labels.shape[0], -1)[:, 0]
    if labels.is_floating_point():
        labels = labels.round()
    labels = labels.long()
    listed = labels < table.shape[0]
    return torch.where(listed, table[labels.clamp(max=table.shape[0] - 1)], 1.0)


def _returned_logs(logs, return_dict):
    """What `evaluate` and the `*_on_batch` methods return: the dict sorted by key, as Keras
    returns it, or the values in `metrics_names` order (a lone loss bare)."""
    if return_dict:
        return dict(sorted(logs.items()))
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _own_code(method):
    """`method` bound to a fresh copy of its code. Dynamo keeps compiled graphs, and counts
    recompilations, per code object: shared by every trainer, the whole step (whose guards on
    the trainer are filtered away) could run another model's graph, and the ninth model compiled
    in a process would hit dynamo's recompile limit."""
    function = method.__func__
    copy = types.FunctionType(function.__code__.replace(), function.__globals__,
                              function.__name__, function.__defaults__, function.__closure__)
    return types.MethodType(functools.update_wrapper(copy, function), method.__self__)


def _step_guards(entries):
    """Which of dynamo's guards the whole train step keeps (a `guard_filter_fn`): torch's global
    state; the structure, shapes and dtypes of the batch (`x`, `y`, `sample_weight`) and class
    weights; the shapes, dtypes and devices of every other tensor but the weights. The model
    and losses are frozen at the first trace, as in a Keras traced train function: changes to
    them (layer attributes) take effect at the next `compile()`; `_prepare` traces again for a
    new `trainable` set or new optimizer settings, checked once per `fit`.
    Checking those ~1,000 guards cost 70 us a step, a sixth of a small MLP's compiled step."""
    keep = []
    for entry in entries:
        root = entry.name.split(".")[0].split("[")[0]
        keep.append(entry.name == "" or root in ("x", "y", "sample_weight", "batches")
                    or entry.name.startswith("self._class_weight")
                    or (entry.guard_type == "TENSOR_MATCH"
                        and not isinstance(entry.value, torch.nn.Parameter)))
    return keep


def _compile(fn, device, fullgraph=False, fallback=None, guards=None, inference=False,
             static=None):
    """`torch.compile(fn)` that falls back, with a warning saying why, when torch cannot compile
    it (no compiler, an unsupported construct, a compiler bug) — at wrap or first call — to
    `fallback`, by default `fn` run eagerly. Shapes are static: a last, smaller batch costs one
    more compilation, not symbolic shapes. `guards` filters dynamo's guards (torch >= 2.7). On
    the CPU the graph's launcher is C++ (inductor's `cpp_wrapper`), not Python: measured 5-8%
    faster on the MLP and convnet steps, 23% on the LSTM's 50 unrolled time steps. CPU forward
    passes (`inference`) run without inductor's layout optimization, which re-lays out the
    channels-last activations around convolutions: ResNet50 predict 1.38x faster without it,
    the convnet's 1.0-1.33x; the convnet's train step is 1.5x faster with it. On CUDA a
    function given `static`, a callable listing the tensors it updates in place, is replayed as
    one CUDA graph (inductor's cudagraphs): a step no longer launches its kernels one by one
    from the host; those tensors, marked before the first call, keep their addresses."""
    fallback = fallback or fn
    instead = ("running it eagerly" if fallback is fn
               else "compiling the forward pass and the update separately")
    options = {"cpp_wrapper": device.type == "cpu"}
    if device.type != "cpu" and torch.__version__ < "2.12":
        # Before 2.12 this inductor pass fails an `assert` where foreach kernels (every lamina
        # optimizer's update) fuse with reductions over tensors of many shapes on CUDA
        # (pytorch/pytorch#176591): the empty AssertionError that made ResNet50's compiled
        # step fall back on an H200 with torch 2.11, where the whole step compiles without it.
        options["loop_ordering_after_fusion"] = False
    cudagraphs = static is not None and device.type == "cuda"
    if cudagraphs:
        options["triton.cudagraphs"] = True
    if inference and device.type == "cpu":
        options["layout_optimization"] = False
    if guards and hasattr(torch.compiler, "keep_tensor_guards_unsafe"):
        options["guard_filter_fn"] = guards
    try:
        compiled = torch.compile(_own_code(fn) if isinstance(fn, types.MethodType) else fn,
                                 dynamic=False, fullgraph=fullgraph, options=options)
    except Exception as error:  # noqa: BLE001 - compile unavailable: run eagerly, say why
        warnings.warn(f"`jit_compile=True` could not use torch.compile ({error}); "
                      f"{instead} instead.")
        return fallback
    state = {"fn": compiled, "unmarked": cudagraphs}

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if state.pop("unmarked", False):
            for tensor in static():
                torch._dynamo.mark_static_address(tensor, guard=False)
        try:
            return state["fn"](*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - a real error re-raises from the eager call
            if state["fn"] is fallback or not _is_compiler_error(error):
                raise
            warnings.warn(f"`jit_compile=True`: torch.compile failed on `{fn.__name__}` "
                          f"({_describe(error)}); {instead} from now on.")
            state["fn"] = fallback
            return fallback(*args, **kwargs)
    return run


def _describe(error):
    """'Type: first line of the message, raised at file:line' for `error`, or for the error it
    wraps (inductor wraps its own; a failed `assert` there has no message)."""
    error = getattr(error, "inner_exception", None) or error
    message = (str(error).splitlines() or [""])[0][:200]
    frames = traceback.extract_tb(error.__traceback__)
    where = (f", raised at {frames[-1].filename.rsplit('site-packages/', 1)[-1]}:"
             f"{frames[-1].lineno}" if frames else "")
    return f"{type(error).__name__}{': ' + message if message else ''}{where}"


def _is_compiler_error(error):
    module = type(error).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or isinstance(
        error, getattr(torch._dynamo.exc, "TorchDynamoException", ()))


# ---------------------------------------------------------------------- predict
@_flush_denormals
def predict(model, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    from lamina.callbacks import CallbackList

    device = module_device(model)
    adapter = data_adapter.get_adapter(x, batch_size=batch_size, steps=steps, device=device)
    verbose = _resolve_verbose(verbose)
    callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=model, verbose=verbose,
                             epochs=1, steps=adapter.steps)
    _set_torch_mode(model, False)
    callbacks.on_predict_begin()
    wants_begin = callbacks.wants_batch_hook("on_predict_batch_begin")
    wants_end = callbacks.wants_batch_hook("on_predict_batch_end")
    group = model._trainer.steps_per_execution if model._trainer is not None else 1
    forward = _predict_function(model)
    chunks, structure = [], None
    chunk = rebatch.chunk_size(model, device)
    step, pending = 0, []  # batches predicted; outputs of the unfinished group's batches
    with torch.inference_mode():
        # Batch-begin hooks run before their batch's pass: batches are then not joined.
        for xb, sizes in rebatch.passes(adapter, None if wants_begin else chunk):
            if not chunks:
                _check_input_shapes(model, xb)
            if wants_begin and step % group == 0:
                callbacks.on_predict_batch_begin(step)
            out = rebatch.call_in_chunks(forward, xb, chunk)
            structure = out
            chunks.append(kt.flatten(out))
            for done, batch_out in enumerate(rebatch.split(out, sizes) if wants_end else (),
                                             step + 1):
                pending.append(batch_out)
                if done % group == 0:
                    callbacks.on_predict_batch_end(done - 1, {"outputs": rebatch.join(pending)})
                    pending = []
            step += 1 if sizes is None else len(sizes)
    if pending:  # a short last group, numbered as Keras numbers it
        callbacks.on_predict_batch_end(step - len(pending) + group - 1,
                                       {"outputs": rebatch.join(pending)})
    callbacks.on_predict_end()
    if not chunks:
        raise ValueError("Unexpected result of `predict_function` (Empty batch_outputs). "
                         "Please use `Model.compile(..., run_eagerly=True)`, or the data "
                         "passed to `predict` is empty.")
    merged = [_to_numpy(torch.cat(parts)) for parts in zip(*chunks)]
    return kt.pack_like(structure, merged)


@_flush_denormals
def predict_on_batch(model, x):
    device = module_device(model)
    _set_torch_mode(model, False)
    x = data_adapter.structure_to_device(x, device)  # a normal tensor, as `predict` passes one
    _check_input_shapes(model, x)
    with torch.inference_mode():  # (an inference tensor would be a second compiled graph)
        out = _predict_function(model)(x)
    return kt.map_structure(_to_numpy, out)


def _predict_function(model):
    """The forward pass `predict` runs: the trainer's when compiled, else the model's."""
    if model._trainer is not None:
        return model._trainer.predict_function()
    return functools.partial(model, training=False)


def _to_numpy(tensor):
    """numpy has no bfloat16: such outputs come back as float32."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.cpu().numpy()

