"""`TensorBoard`: writes TensorBoard event files during training."""

import importlib.util
import os
import time
import warnings

import numpy as np

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _is_chief
from lamina.callbacks.callback import _optimizers
from lamina.callbacks.callback import _scalar
from lamina.utils.progbar import _to_python

__all__ = ["TensorBoard"]

_INSTALL_HINT = (
    "The `TensorBoard` callback requires the `tensorboard` package. "
    "Install it with `pip install tensorboard`."
)


def _require_tensorboard():
    if importlib.util.find_spec("tensorboard") is None:
        raise ImportError(_INSTALL_HINT)


class _TorchSink:
    """Event writer through `torch.utils.tensorboard.SummaryWriter`."""

    def __init__(self, logdir):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=logdir)

    def scalar(self, tag, value, step):
        self._writer.add_scalar(tag, value, global_step=step)

    def histogram(self, tag, values, step):
        self._writer.add_histogram(tag, values, global_step=step)

    def image(self, tag, images, step):
        self._writer.add_images(tag, images, global_step=step, dataformats="NHWC")

    def summary(self, proto, step):
        self._writer._get_file_writer().add_summary(proto, step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


class _TBSink:
    """Event writer through tensorboard's own `EventFileWriter`."""

    def __init__(self, logdir):
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._pb = summary_pb2
        self._writer = EventFileWriter(logdir)

    def summary(self, proto, step):
        from tensorboard.compat.proto import event_pb2

        event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=proto)
        self._writer.add_event(event)

    def scalar(self, tag, value, step):
        value = self._pb.Summary.Value(tag=tag, simple_value=float(value))
        self.summary(self._pb.Summary(value=[value]), step)

    def histogram(self, tag, values, step):
        from tensorboard.compat.proto import summary_pb2

        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            return
        counts, edges = np.histogram(values, bins=30)
        hist = summary_pb2.HistogramProto(
            min=float(values.min()),
            max=float(values.max()),
            num=float(values.size),
            sum=float(values.sum()),
            sum_squares=float(np.dot(values, values)),
            bucket_limit=[float(e) for e in edges[1:]],
            bucket=[float(c) for c in counts],
        )
        value = self._pb.Summary.Value(tag=tag, histo=hist)
        self.summary(self._pb.Summary(value=[value]), step)

    def image(self, tag, images, step):
        try:
            from PIL import Image
        except ImportError:
            warnings.warn("Writing weight images needs Pillow; skipped.")
            return
        import io

        for i, img in enumerate(images):
            pixels = np.clip(img * 255.0, 0, 255).astype(np.uint8)
            if pixels.shape[-1] == 1:
                pixels = pixels[..., 0]
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            h, w = img.shape[:2]
            encoded = self._pb.Summary.Image(
                height=h,
                width=w,
                colorspace=img.shape[-1],
                encoded_image_string=buf.getvalue(),
            )
            name = tag if len(images) == 1 else f"{tag}/image/{i}"
            value = self._pb.Summary.Value(tag=name, image=encoded)
            self.summary(self._pb.Summary(value=[value]), step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


def _make_sink(logdir):
    try:
        return _TorchSink(logdir)
    except ImportError:
        pass
    try:
        return _TBSink(logdir)
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None


def _keras_model_summary_proto(json_string):
    """The summary Keras writes under tag `keras` for TensorBoard's graph view."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.compat.proto import tensor_pb2
    from tensorboard.compat.proto import types_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="graph_keras_model", content=b"1"
        )
    )
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=[json_string.encode("utf-8")]
    )
    value = summary_pb2.Summary.Value(tag="keras", metadata=metadata, tensor=tensor)
    return summary_pb2.Summary(value=[value])


def _weight_image(weight):
    """A weight (Keras layout) as an NHWC image batch in [0, 1], or None."""
    img = np.squeeze(np.asarray(weight, dtype=np.float32))
    if img.ndim == 1:  # bias
        img = img.reshape(1, img.shape[0], 1, 1)
    elif img.ndim == 2:  # dense kernel
        if img.shape[0] > img.shape[1]:
            img = img.T
        img = img.reshape(1, img.shape[0], img.shape[1], 1)
    elif img.ndim == 3:  # conv kernel: one image per output channel
        from lamina import backend

        if backend.image_data_format() == "channels_last":
            img = np.transpose(img, (2, 0, 1))
        img = img.reshape(img.shape[0], img.shape[1], img.shape[2], 1)
    if img.ndim != 4 or img.shape[-1] not in (1, 3, 4):
        return None
    low, high = float(img.min()), float(img.max())
    scale = high - low
    return (img - low) / scale if scale > 0 else np.zeros_like(img)


def _model_weights(model):
    """`[(tag, numpy value)]` of the model's weights, in Keras layout."""
    out = []
    layers = getattr(model, "layers", None)
    if layers is None:
        for name, p in model.named_parameters():
            out.append((name.replace(".", "/"), p.detach().cpu().numpy()))
        return out
    for layer in layers:
        weights = list(getattr(layer, "weights", None) or [])
        if not weights:
            continue
        try:
            values = layer.get_weights()
        except Exception:
            values = None
        if values is None or len(values) != len(weights):
            values = _to_python(weights)
        layer_name = getattr(layer, "name", type(layer).__name__)
        for i, (weight, value) in enumerate(zip(weights, values)):
            path = getattr(weight, "path", None)
            if not path:
                wname = getattr(weight, "name", None) or f"weight_{i}"
                path = f"{layer_name}/{wname}"
            out.append((str(path).replace(":", "_"), np.asarray(value)))
    return out


class TensorBoard(Callback):
    """Enable visualizations for TensorBoard.

    Writes event files under `log_dir/train` and `log_dir/validation`:
    per-epoch scalars `epoch_<metric>` (validation metrics without their
    `val_` prefix, in `validation`), the learning rate, weight histograms
    and, optionally, batch-level scalars and a profile of a few batches.
    Needs the `tensorboard` package (`pip install tensorboard`); then run
    `tensorboard --logdir=path_to_your_logs`.

    Args:
        log_dir: Directory where the event files are written.
        histogram_freq: Frequency (in epochs) at which to write weight
            histograms; 0 disables them.
        write_graph: Whether to write the model's Keras config (for the
            conceptual graph of Functional and Sequential models).
        write_images: Whether to write the weights as images (with
            histograms).
        write_steps_per_second: Whether to log the training steps per second.
        update_freq: `"epoch"`, `"batch"` or an integer: write `batch_<metric>`
            scalars every that many batches. Batch values are read from the
            device only when they are written.
        profile_batch: Batch index (1-based) or pair `(start, stop)` of
            batches to profile with `torch.profiler`; 0 disables profiling.
        embeddings_freq: Frequency (in epochs) at which to save the weights
            of `Embedding` layers for the projector; 0 disables it.
        embeddings_metadata: Metadata file name for all `Embedding` layers,
            or a dict mapping layer names to file names.

    Files are written by the chief process only under `torch.distributed`.
    """

    _supports_tensor_logs = True

    def __init__(
        self,
        log_dir="logs",
        histogram_freq=0,
        write_graph=True,
        write_images=False,
        write_steps_per_second=False,
        update_freq="epoch",
        profile_batch=0,
        embeddings_freq=0,
        embeddings_metadata=None,
    ):
        super().__init__()
        _require_tensorboard()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (
            not isinstance(update_freq, int)
            or isinstance(update_freq, bool)
            or update_freq < 1
        ):
            raise ValueError(
                "Expected `update_freq` to be 'epoch', 'batch' or a positive "
                f"integer. Received: update_freq={update_freq!r}"
            )
        self.update_freq = update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._init_profile_batch(profile_batch)
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0
        self._epoch_start_time = 0
        self._batch_start_time = 0
        self._profiler = None
        self._is_tracing = False
        self._writers = {}
        self._log_write_dir = self.log_dir
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")

    def _init_profile_batch(self, profile_batch):
        message = (
            "profile_batch must be a non-negative integer or 2-tuple of "
            "positive integers. A pair of positive integers signifies a range "
            f"of batches to profile. Found: {profile_batch}"
        )
        if isinstance(profile_batch, str):
            try:
                profile_batch = [int(p) for p in profile_batch.split(",")]
            except ValueError:
                raise ValueError(message) from None
        if isinstance(profile_batch, bool):
            raise ValueError(message)
        if isinstance(profile_batch, int):
            start, stop = profile_batch, profile_batch
        elif isinstance(profile_batch, (tuple, list)) and len(profile_batch) == 2:
            start, stop = profile_batch
        else:
            raise ValueError(message)
        if start < 0 or stop < start:
            raise ValueError(message)
        self._start_batch, self._stop_batch = start, stop
        self._should_trace = not (start == 0 and stop == 0)

    # -- writers -------------------------------------------------------------
    def _writer(self, which):
        if which not in self._writers:
            path = self._train_dir if which == "train" else self._val_dir
            self._writers[which] = _make_sink(path)
        return self._writers[which]

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def set_model(self, model):
        super().set_model(model)
        self._close_writers()
        if not _is_chief():
            return
        if self.write_graph:
            self._write_keras_model_summary()
        if self.embeddings_freq:
            self._configure_embeddings()

    def _batch_hook_active(self, hook):
        if not _is_chief() or hook not in (
            "on_train_batch_begin",
            "on_train_batch_end",
        ):
            return False
        return (
            self.update_freq != "epoch"
            or self.write_steps_per_second
            or self._should_trace
        )

    def _write_keras_model_summary(self):
        model = self.model
        if type(model).__name__ not in ("Functional", "Sequential"):
            return
        try:
            json_string = model.to_json()
        except Exception as exc:  # never let a summary break training
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {exc}")
            return
        writer = self._writer("train")
        writer.summary(_keras_model_summary_proto(json_string), 0)
        writer.flush()

    def _configure_embeddings(self):
        lines = []
        metadata = self.embeddings_metadata
        remaining = dict(metadata) if isinstance(metadata, dict) else None
        for layer in getattr(self.model, "layers", []):
            if type(layer).__name__ != "Embedding":
                continue
            lines.append("embeddings {")
            lines.append(
                '  tensor_name: "layer_with_weights-0/embeddings/'
                '.ATTRIBUTES/VARIABLE_VALUE"'
            )
            if isinstance(metadata, str):
                lines.append(f'  metadata_path: "{metadata}"')
            elif remaining and layer.name in remaining:
                lines.append(f'  metadata_path: "{remaining.pop(layer.name)}"')
            lines.append("}")
        if remaining:
            raise ValueError(
                "Unrecognized `Embedding` layer names passed to "
                "`keras.callbacks.TensorBoard` `embeddings_metadata` "
                f"argument: {list(remaining.keys())}"
            )
        os.makedirs(self._log_write_dir, exist_ok=True)
        path = os.path.join(self._log_write_dir, "projector_config.pbtxt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + ("\n" if lines else ""))

    # -- hooks -----------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0

    def on_train_end(self, logs=None):
        if self._is_tracing:
            self._stop_trace()
        self._close_writers()

    def on_test_end(self, logs=None):
        if not _is_chief() or not logs:
            return
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        if iterations is None:
            return
        step = int(_scalar(iterations))
        writer = self._writer("val")
        for name, value in logs.items():
            writer.scalar(f"evaluation_{name}_vs_iterations", value, step)
        writer.flush()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()
        if self._should_trace and self._global_train_batch == self._start_batch:
            self._start_trace()

    def on_train_batch_end(self, batch, logs=None):
        step = self._global_train_batch
        if self.update_freq != "epoch" and step % self.update_freq == 0:
            writer = self._writer("train")
            if self.write_steps_per_second:
                elapsed = time.time() - self._batch_start_time
                if elapsed > 0:
                    writer.scalar("batch_steps_per_second", 1.0 / elapsed, step)
            if isinstance(logs, dict) and logs:
                names = list(logs)
                for name, value in zip(names, _to_python(logs.values())):
                    try:
                        writer.scalar(f"batch_{name}", float(value), step)
                    except (TypeError, ValueError):
                        pass  # non-scalar entries are not written
        if self._is_tracing and step >= self._stop_batch:
            self._stop_trace()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._previous_epoch_iterations = self._iterations()
            self._epoch_start_time = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if not _is_chief():
            return
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._log_embeddings(epoch)

    # -- helpers ---------------------------------------------------------------
    def _iterations(self):
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        return 0.0 if iterations is None else _scalar(iterations)

    def _collect_learning_rate(self, logs):
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if optimizer is None:
            return logs
        if not (
            hasattr(optimizer, "learning_rate")
            or isinstance(getattr(optimizer, "optimizers", None), (list, tuple))
        ):
            return logs
        try:
            for name, opt in _optimizers(self.model):
                key = "learning_rate" if name is None else f"learning_rate_{name}"
                logs[key] = _scalar(opt.learning_rate)
        except (TypeError, ValueError, AttributeError):
            pass  # e.g. a schedule object that is not a number
        return logs

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train_logs = self._collect_learning_rate(train_logs)
        if self.write_steps_per_second:
            seconds = time.time() - self._epoch_start_time
            steps = self._iterations() - self._previous_epoch_iterations
            train_logs["steps_per_second"] = steps / seconds if seconds > 0 else 0.0
        for which, items in (("train", train_logs), ("val", val_logs)):
            if not items:
                continue
            writer = self._writer(which)
            for name, value in items.items():
                try:
                    writer.scalar(f"epoch_{name}", float(value), epoch)
                except (TypeError, ValueError):
                    pass
            writer.flush()

    def _log_weights(self, epoch):
        writer = self._writer("train")
        for tag, value in _model_weights(self.model):
            if value.size == 0:
                continue
            writer.histogram(f"{tag}/histogram", value, epoch)
            if self.write_images:
                image = _weight_image(value)
                if image is not None:
                    writer.image(f"{tag}/image", image, epoch)
        writer.flush()

    def _log_embeddings(self, epoch):
        os.makedirs(self._train_dir, exist_ok=True)
        path = os.path.join(
            self._train_dir, f"keras_embedding.ckpt-{epoch}.weights.h5"
        )
        self.model.save_weights(path)

    def _start_trace(self):
        import torch
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile
        from torch.profiler import tensorboard_trace_handler

        activities = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(ProfilerActivity.CUDA)
        try:
            self._profiler = profile(
                activities=activities,
                on_trace_ready=tensorboard_trace_handler(self._train_dir),
            )
            self._profiler.start()
            self._is_tracing = True
        except Exception as exc:  # profiler errors are not fatal
            warnings.warn(f"Failed to start profiler: {exc}")
            self._profiler = None

    def _stop_trace(self):
        try:
            if self._profiler is not None:
                self._profiler.stop()
        except Exception as exc:  # pragma: no cover
            warnings.warn(f"Failed to stop profiler: {exc}")
        finally:
            self._profiler = None
            self._is_tracing = False
