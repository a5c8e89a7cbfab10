"""Entry points: `save_model`/`load_model`, `save_weights`/`load_weights`, JSON and YAML.

| format | written by | read by |
|---|---|---|
| `.keras` zip | `model.save("m.keras")` | `load_model`, `load_weights` |
| legacy full-model `.h5` | `model.save("m.h5")` | `load_model`, `load_weights` |
| legacy weights `.h5` | `model.save_weights("w.h5")` | `load_weights` (by order or name) |
| Keras 3 `.weights.h5` | `model.save_weights("w.weights.h5")` | `load_weights` |
| `.safetensors` | `model.save_weights("w.safetensors")` | `load_weights` |
| JSON / YAML | `model.to_json()`, `model.to_yaml()` | `model_from_json`, `model_from_yaml` |

Every write goes through a temporary file and an atomic rename; every load checks all values
before assigning any, so a failed load leaves the model's weights as they were.
"""
import json
import os
import struct
import warnings

import numpy as np

from lamina.saving import atomic


def _path(filepath):
    try:
        return os.fspath(filepath)
    except TypeError:
        raise TypeError("`filepath` must be a string or a path-like object. Received: "
                        f"filepath={filepath!r}") from None


def _h5py():
    import h5py
    return h5py


def _is_keras_zip(filepath):
    import zipfile
    return str(filepath).endswith(".keras") or (
        os.path.isfile(filepath) and zipfile.is_zipfile(filepath))


def _open_h5(filepath):
    h5py = _h5py()
    try:
        return h5py.File(filepath, "r")
    except OSError as error:
        raise ValueError(f"Could not read the HDF5 file {filepath!r}: {error}. The file may be "
                         "corrupt, truncated or not an HDF5 file.") from error


# ------------------------------------------------------------------------ whole models
def save_model(model, filepath, overwrite=True, zipped=None, include_optimizer=True,
               save_format=None, **kwargs):
    """Save a whole model: `.keras` archive (recommended) or legacy `.h5`."""
    if kwargs:
        raise ValueError(f"The following argument(s) are not supported: {sorted(kwargs)}")
    filepath = _path(filepath)
    if save_format == "tf" or (save_format is None and not filepath.endswith(
            (".keras", ".h5", ".hdf5"))):
        raise ValueError("Invalid filepath extension for saving. Please add either a `.keras` "
                         "extension for the native Keras format (recommended) or a `.h5` "
                         "extension. Use `model.export(filepath)` if you want to export a "
                         f"SavedModel for use with TFLite/TFServing/etc. Received: "
                         f"filepath={filepath}.")
    if not atomic.check_overwrite(filepath, overwrite):
        return
    if save_format == "h5" or (save_format is None and filepath.endswith((".h5", ".hdf5"))):
        from lamina.saving import config as config_lib, legacy_h5
        config_lib.legacy_model_config(model)  # raises before writing for unsaveable models
        h5py = _h5py()
        with atomic.atomic_write(filepath) as tmp:
            with h5py.File(tmp, "w") as f:
                legacy_h5.write_model(f, model, include_optimizer=include_optimizer)
        return
    from lamina.saving import keras_archive
    keras_archive.save_model(model, filepath)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by `save_model` (or by Keras): `.keras` or legacy `.h5`.

    `safe_mode=True` refuses to load Python code stored in the file (`Lambda` bytecode).
    """
    filepath = _path(filepath)
    if not os.path.exists(filepath):
        raise ValueError(f"File not found: filepath={filepath}. Please ensure the file is an "
                         "accessible `.keras` zip file.")
    from lamina.saving.lambda_serialization import SafeModeScope
    with SafeModeScope(safe_mode):
        if _is_keras_zip(filepath):
            from lamina.saving import keras_archive
            return keras_archive.load_model(filepath, custom_objects, compile, safe_mode)
        h5py = _h5py()
        if filepath.endswith((".h5", ".hdf5")) or h5py.is_hdf5(filepath):
            from lamina.saving import legacy_h5
            with _open_h5(filepath) as f:
                try:
                    return legacy_h5.read_model(f, filepath, custom_objects, compile, safe_mode)
                except (OSError, KeyError) as error:
                    raise ValueError(f"Could not read the model in {filepath!r}: {error}. The "
                                     "file may be corrupt or truncated.") from error
    raise ValueError(f"File format not supported: filepath={filepath}. lamina supports `.keras` "
                     "files and legacy H5 format files (`.h5` extension).")


# ------------------------------------------------------------------------ weights
def save_weights(model, filepath, overwrite=True, **kwargs):
    """Save the weights: `.weights.h5` (Keras 3), `.h5` (Keras 2 layout), `.safetensors`."""
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {sorted(kwargs)}")
    filepath = _path(filepath)
    if not filepath.endswith((".weights.h5", ".h5", ".hdf5", ".safetensors")):
        raise ValueError("The filename must end in `.weights.h5` (Keras 3 layout), `.h5` "
                         "(Keras 2 layout) or `.safetensors`. Received: "
                         f"filepath={filepath}")
    if not atomic.check_overwrite(filepath, overwrite):
        return
    if filepath.endswith(".safetensors"):
        from lamina.saving import weights_h5
        tensors = {}
        for path, layer, records, _ in weights_h5.walk(model):
            for i, record in enumerate(records):
                key = f"{path}/vars/{i}" if path else f"vars/{i}"
                tensors[key] = weights_h5.keras_value(layer, record)
        with atomic.atomic_write(filepath) as tmp:
            _write_safetensors(tmp, tensors)
        return
    h5py = _h5py()
    with atomic.atomic_write(filepath) as tmp:
        with h5py.File(tmp, "w") as f:
            if filepath.endswith(".weights.h5"):
                from lamina.saving import weights_h5
                weights_h5.save_to_group(f, model)
            else:
                from lamina.saving import legacy_h5
                legacy_h5.save_weights_to_group(f, model)


def load_weights(model, filepath, by_name=False, skip_mismatch=False, **kwargs):
    """Load weights from any format `save_weights`/`save_model` writes (or Keras writes).

    Legacy `.h5` files pair layers by order (layers that have weights), or by layer name with
    `by_name=True`; `skip_mismatch=True` skips layers whose weight count or shapes differ.
    Nothing is assigned unless every value checks out.
    """
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {sorted(kwargs)}")
    filepath = _path(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"Weights file not found: filepath={filepath}")
    from lamina.saving import weights_h5
    if filepath.endswith(".safetensors"):
        if by_name:
            raise ValueError("`by_name=True` is only supported for legacy `.h5` files.")
        values = _read_safetensors(filepath)
        assignments = _plan_safetensors(model, values, skip_mismatch)
        weights_h5.apply_assignments(assignments)
        return
    if _is_keras_zip(filepath) and not _h5py().is_hdf5(filepath):
        if by_name:
            raise ValueError("`by_name=True` is only supported for legacy `.h5` files.")
        from lamina.saving import keras_archive
        keras_archive.load_weights(model, filepath, skip_mismatch=skip_mismatch)
        return
    with _open_h5(filepath) as f:
        try:
            legacy = "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f
            if legacy:
                from lamina.saving import legacy_h5
                group = f["model_weights"] if "model_weights" in f else f
                plan = legacy_h5.plan_load_by_name if by_name else legacy_h5.plan_load_by_order
                assignments = plan(group, model, skip_mismatch=skip_mismatch)
                optimizer_values = None
            else:
                if by_name:
                    raise ValueError("`by_name=True` is only supported for legacy `.h5` files; "
                                     f"{filepath!r} uses the Keras 3 `.weights.h5` layout.")
                assignments = weights_h5.plan_load(f, model, skip_mismatch=skip_mismatch)
                optimizer_values = weights_h5.read_optimizer_values(f)
        except (OSError, KeyError) as error:
            raise ValueError(f"Could not read the weights in {filepath!r}: {error}. The file "
                             "may be corrupt or truncated.") from error
    weights_h5.apply_assignments(assignments)
    if optimizer_values is not None and getattr(model, "optimizer", None) is not None:
        weights_h5.load_optimizer_values(model, optimizer_values, build=False)


# ------------------------------------------------------------------------ safetensors
_ST_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64",
              "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
_ST_NUMPY = {v: k for k, v in _ST_DTYPES.items()}


def _write_safetensors(path, tensors):
    """The safetensors format: 8-byte header length, JSON header, raw little-endian data."""
    header, chunks, offset = {}, [], 0
    for key, value in tensors.items():
        value = np.ascontiguousarray(value)
        if value.dtype.name not in _ST_DTYPES:
            value = value.astype(np.float32)
        data = value.astype(value.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": _ST_DTYPES[value.dtype.name], "shape": list(value.shape),
                       "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "keras", "producer": "lamina"}
    raw = json.dumps(header, separators=(",", ":")).encode("utf8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for chunk in chunks:
            f.write(chunk)


def _read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    try:
        (size,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8:8 + size])
        body = memoryview(blob)[8 + size:]
        out = {}
        for key, info in header.items():
            if key == "__metadata__":
                continue
            start, end = info["data_offsets"]
            if end > len(body):
                raise ValueError(f"tensor {key!r} runs past the end of the file")
            dtype = np.dtype(_ST_NUMPY[info["dtype"]]).newbyteorder("<")
            array = np.frombuffer(body[start:end], dtype=dtype)
            out[key] = array.reshape(info["shape"]).copy()
    except (struct.error, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Could not read the safetensors file {path!r}: {error}. The file may "
                         "be corrupt or truncated.") from error
    return out


def _plan_safetensors(model, values, skip_mismatch):
    from lamina.saving import weights_h5
    assignments, used = [], set()
    for path, layer, records, _ in weights_h5.walk(model):
        for i, record in enumerate(records):
            key = f"{path}/vars/{i}" if path else f"vars/{i}"
            if key not in values:
                msg = f"The safetensors file has no tensor {key!r} (layer '{layer.name}')."
                if skip_mismatch:
                    warnings.warn(msg, stacklevel=3)
                    continue
                raise ValueError(msg)
            used.add(key)
            value = values[key]
            expected = weights_h5.keras_shape(layer, record)
            if tuple(value.shape) != expected:
                msg = (f"Shape mismatch for weight '{record.name}' of layer '{layer.name}': "
                       f"expected {expected}, the file holds {tuple(value.shape)}.")
                if skip_mismatch:
                    warnings.warn(msg, stacklevel=3)
                    continue
                raise ValueError(msg)
            assignments.append((layer, record, value))
    extra = sorted(set(values) - used)
    if extra and not skip_mismatch:
        raise ValueError(f"The safetensors file holds tensors the model does not have: "
                         f"{extra[:10]}")
    return assignments


# ------------------------------------------------------------------------ JSON / YAML
def _model_config(model):
    from lamina.saving import config as config_lib
    return config_lib.serialize_model(model)


def model_to_json(model, **kwargs):
    """The model's Keras 3 config as a JSON string (`kwargs` go to `json.dumps`)."""
    return json.dumps(_model_config(model), **kwargs)


def model_to_yaml(model, **kwargs):
    """The same tree as `to_json`, as YAML (`yaml.safe_dump`)."""
    import yaml
    kwargs.setdefault("sort_keys", False)
    return yaml.safe_dump(_model_config(model), **kwargs)


def model_from_config(config, custom_objects=None, safe_mode=True):
    """A model from a config dict (Keras 3 or Keras 2)."""
    from lamina.saving import config as config_lib
    if not isinstance(config, dict):
        raise TypeError("`model_from_config` expects a dict, e.g. `json.loads(json_string)`. "
                        f"Received: {type(config).__name__}")
    return config_lib.model_from_config(config, custom_objects, safe_mode=safe_mode)


def model_from_json(json_string, custom_objects=None, safe_mode=True):
    """A model from `model.to_json()` output (lamina, Keras 3 or Keras 2)."""
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`model_from_json` could not parse its input as JSON: {error}") \
            from error
    return model_from_config(config, custom_objects, safe_mode=safe_mode)


def model_from_yaml(yaml_string, custom_objects=None, safe_mode=True):
    """A model from `model.to_yaml()` output; parsed with `yaml.safe_load` only."""
    import yaml
    try:
        config = yaml.safe_load(yaml_string)
    except yaml.YAMLError as error:
        raise ValueError(f"`model_from_yaml` could not parse its input as YAML: {error}") \
            from error
    return model_from_config(config, custom_objects, safe_mode=safe_mode)
