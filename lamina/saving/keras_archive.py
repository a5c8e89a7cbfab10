"""The `.keras` zip archive: `metadata.json`, `config.json`, `model.weights.h5`.

`config.json` is the model's Keras 3 config (with `build_config` and `compile_config`);
`model.weights.h5` uses the Keras 3 weights layout, the optimizer under `optimizer/vars`.
Files written by real Keras load here, and files written here load in Keras.
"""
import datetime
import io
import json
import zipfile

import h5py

from lamina.saving import atomic, weights_h5
from lamina.saving.config import KERAS_VERSION

CONFIG_FILENAME = "config.json"
METADATA_FILENAME = "metadata.json"
WEIGHTS_FILENAME = "model.weights.h5"


def _weights_bytes(model, include_optimizer=True):
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        weights_h5.save_to_group(f, model, include_optimizer=include_optimizer)
    return buffer.getvalue()


def save_model(model, filepath):
    """Write `model` as a `.keras` archive (atomically)."""
    from lamina.saving import config as config_lib

    config = config_lib.serialize_model(model)  # raises first for models without a config
    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = _weights_bytes(model)
    with atomic.atomic_write(filepath) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(METADATA_FILENAME, json.dumps(metadata))
            archive.writestr(CONFIG_FILENAME, json.dumps(config))
            archive.writestr(WEIGHTS_FILENAME, weights, compress_type=zipfile.ZIP_STORED)


def _open(filepath):
    try:
        archive = zipfile.ZipFile(filepath, "r")
    except zipfile.BadZipFile as error:
        raise ValueError(f"The file {filepath!r} is not a valid `.keras` archive (a zip file): "
                         f"{error}. It may be corrupt or truncated.") from error
    names = set(archive.namelist())
    if CONFIG_FILENAME not in names:
        archive.close()
        raise ValueError(f"The `.keras` archive {filepath!r} has no {CONFIG_FILENAME}.")
    return archive, names


def _read_weights(archive, names, filepath):
    if WEIGHTS_FILENAME not in names:
        other = sorted(n for n in names if n.startswith("model.weights"))
        raise ValueError(f"The `.keras` archive {filepath!r} has no {WEIGHTS_FILENAME}"
                         + (f" (found {other}: sharded or npz weights are not supported)"
                            if other else "") + ".")
    try:
        return archive.read(WEIGHTS_FILENAME)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"Could not read {WEIGHTS_FILENAME} from {filepath!r}: {error}. The "
                         "file may be corrupt or truncated.") from error


def _h5_from_bytes(data, filepath):
    try:
        return h5py.File(io.BytesIO(data), "r")
    except OSError as error:
        raise ValueError(f"The weights inside {filepath!r} are not a readable HDF5 file: "
                         f"{error}") from error


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a `.keras` archive, compiled and with its optimizer state if saved so."""
    from lamina.saving import config as config_lib

    archive, names = _open(filepath)
    with archive:
        try:
            config = json.loads(archive.read(CONFIG_FILENAME))
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise ValueError(f"Could not read {CONFIG_FILENAME} from {filepath!r}: {error}") \
                from error
        weights = _read_weights(archive, names, filepath)
    model = config_lib.model_from_config(config, custom_objects, safe_mode=safe_mode,
                                         compile=False)
    with _h5_from_bytes(weights, filepath) as f:
        try:
            weights_h5.apply_assignments(weights_h5.plan_load(f, model))
            optimizer_values = weights_h5.read_optimizer_values(f)
        except OSError as error:
            raise ValueError(f"Could not read the weights in {filepath!r}: {error}. The file "
                             "may be corrupt or truncated.") from error
    compile_config = config.get("compile_config")
    if compile and compile_config:
        config_lib.compile_from_config(model, compile_config, custom_objects)
        if optimizer_values is not None:
            weights_h5.load_optimizer_values(model, optimizer_values)
    return model


def load_weights(model, filepath, skip_mismatch=False):
    """Load only the weights of a `.keras` archive into `model`."""
    archive, names = _open(filepath)
    with archive:
        weights = _read_weights(archive, names, filepath)
    with _h5_from_bytes(weights, filepath) as f:
        try:
            assignments = weights_h5.plan_load(f, model, skip_mismatch=skip_mismatch)
        except OSError as error:
            raise ValueError(f"Could not read the weights in {filepath!r}: {error}") from error
    weights_h5.apply_assignments(assignments)
