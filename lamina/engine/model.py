"""`Model`: a layer with training, evaluation, prediction, summary and saving.

`Model(inputs, outputs)` builds a functional model; subclassing `Model` and writing `call`
gives a model whose topology is Python code.
"""
from lamina.engine.layer import Layer


class _CompileOption:
    """A `compile()` option that reads and sets on the model, as in Keras
    (`model.run_eagerly = True`): held by the trainer once compiled, else until `compile()`."""

    def __init__(self, default):
        self.default = default

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, model, owner=None):
        if model is None:
            return self
        if model._trainer is not None:
            return getattr(model._trainer, self.name)
        return model.__dict__.get("_" + self.name, self.default)

    def __set__(self, model, value):
        if model._trainer is not None:
            model._trainer.set_option(self.name, value)
        else:
            model.__dict__["_" + self.name] = value


_STEP_HOOKS = ("train_step", "test_step", "predict_step", "compute_loss", "compute_metrics")


class Model(Layer):
    run_eagerly = _CompileOption(False)
    jit_compile = _CompileOption(False)  # "auto" resolves to False, as Keras does on torch
    steps_per_execution = _CompileOption(1)

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "input" in kwargs):
            from lamina.engine.functional import Functional
            return Functional.__new__(Functional)
        return super().__new__(cls)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stop_training = False
        self.compiled = False
        self.optimizer = None
        self.loss = None
        self._trainer = None

    # --------------------------------------------------------------- structure
    @property
    def layers(self):
        return self._sublayers()

    def get_layer(self, name=None, index=None):
        if index is not None and name is not None:
            raise ValueError("Provide only a layer name or a layer index. Received: "
                             f"index={index}, name={name}.")
        if index is not None:
            if len(self.layers) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: "
                             f"{[layer.name for layer in self.layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    @property
    def inputs(self):
        raise AttributeError(f"Model '{self.name}' is a subclassed model: its topology is Python "
                             "code, so it has no symbolic `inputs`.")

    @property
    def outputs(self):
        raise AttributeError(f"Model '{self.name}' is a subclassed model: its topology is Python "
                             "code, so it has no symbolic `outputs`.")

    @property
    def output_names(self):
        return [self.name]

    def build(self, input_shape=None):
        """Create the weights by running the model once on placeholder inputs."""
        if self.built:
            return
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument.")
        from lamina.engine.input_layer import Input

        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple)):
            inputs = [Input(batch_shape=tuple(s)) for s in input_shape]
        else:
            inputs = Input(batch_shape=tuple(input_shape))
        self.built = True
        self(inputs)

    def _maybe_build(self, args, kwargs):
        if type(self).build is Model.build:  # sub-layers build themselves inside `call`
            self.built = True
        else:
            super()._maybe_build(args, kwargs)

    def call(self, inputs, training=None, mask=None):
        raise NotImplementedError(f"Model '{self.name}' must implement `call(self, inputs)`.")

    # --------------------------------------------------------------- training API
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, **kwargs):
        """Configure the model for training (Keras's `compile`; not `nn.Module.compile`)."""
        from lamina.training.trainer import Trainer

        overridden = [name for name in _STEP_HOOKS if hasattr(type(self), name)]
        if overridden:  # fit would silently run its own step instead
            raise NotImplementedError(
                f"Model '{self.name}' ({type(self).__name__}) defines {overridden}: lamina's "
                "`fit`/`evaluate`/`predict` do not call overridden steps yet. Write the loop in "
                "PyTorch (the model is a `torch.nn.Module`), or move the logic into `call`, "
                "`add_loss` and metrics.")
        self._trainer = Trainer(self, optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                                metrics=metrics, weighted_metrics=weighted_metrics,
                                run_eagerly=run_eagerly, steps_per_execution=steps_per_execution,
                                jit_compile=jit_compile, auto_scale_loss=auto_scale_loss,
                                **kwargs)
        self.optimizer = self._trainer.optimizer
        self.loss = loss
        self.compiled = True

    def _require_compiled(self, what):
        if self._trainer is None:
            raise ValueError(f"You must call `compile()` before calling `{what}()` on model "
                               f"'{self.name}'.")
        return self._trainer

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        return self._require_compiled("fit").fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
            class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size, validation_freq=validation_freq, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        if kwargs:
            raise ValueError(f"Arguments not recognized: {kwargs}")
        return self._require_compiled("evaluate").evaluate(
            x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
            steps=steps, callbacks=callbacks, return_dict=return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        from lamina.training.trainer import predict
        return predict(self, x, batch_size=batch_size, verbose=verbose, steps=steps,
                       callbacks=callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        return self._require_compiled("train_on_batch").train_on_batch(
            x, y, sample_weight=sample_weight, class_weight=class_weight, return_dict=return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        return self._require_compiled("test_on_batch").test_on_batch(
            x, y, sample_weight=sample_weight, return_dict=return_dict)

    def predict_on_batch(self, x):
        from lamina.training.trainer import predict_on_batch
        return predict_on_batch(self, x)

    @property
    def metrics(self):
        return self._trainer.metrics if self._trainer is not None else []

    @property
    def metrics_names(self):
        return self._trainer.metrics_names if self._trainer is not None else []

    def reset_metrics(self):
        """Zero the loss tracker and every compiled metric."""
        if self._trainer is not None:
            self._trainer._reset_metrics()

    def get_metrics_result(self):
        """The current loss and metric values, as Python floats (reads them from the device)."""
        from lamina.training.trainer import _logs_to_floats
        return _logs_to_floats(self._require_compiled("get_metrics_result")._logs())

    # --------------------------------------------------------------- saving
    def save(self, filepath, overwrite=True, **kwargs):
        """Save the whole model: `.keras` archive, or the legacy full-model `.h5`."""
        from lamina.saving import saving_api
        saving_api.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        """Save the weights: legacy Keras 2 `.h5`, Keras 3 `.weights.h5`, or `.safetensors`."""
        from lamina.saving import saving_api
        saving_api.save_weights(self, filepath, overwrite=overwrite, **kwargs)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False, **kwargs):
        from lamina.saving import saving_api
        saving_api.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch,
                                **kwargs)

    def to_json(self, **kwargs):
        from lamina.saving import saving_api
        return saving_api.model_to_json(self, **kwargs)

    def to_yaml(self, **kwargs):
        from lamina.saving import saving_api
        return saving_api.model_to_yaml(self, **kwargs)

    # --------------------------------------------------------------- inspection
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        from lamina.utils.summary_utils import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable)

    def get_config(self):
        raise NotImplementedError(
            f"Model '{self.name}' ({type(self).__name__}) is a subclassed model: its topology is "
            "Python code and cannot be serialized. Implement `get_config()` (and, if needed, "
            "`from_config()`) in your subclass, or use `save_weights()`/`load_weights()`.")
