"""Atomic file writes: a crash mid-save never leaves a half-written file behind.

>>> with atomic_write("model.weights.h5") as tmp:
...     write_everything_to(tmp)          # an exception here keeps the old file intact

The data goes to a temporary file in the destination folder (same filesystem), is flushed
to disk with `fsync`, and only then replaces the destination with `os.replace`.
"""
import contextlib
import os
import sys
import tempfile


def _fsync_path(path, directory=False):
    flags = os.O_RDONLY
    if directory:
        flags |= getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_overwrite(filepath, overwrite):
    """False when `filepath` exists and must be kept (Keras asks interactively)."""
    if overwrite or not os.path.exists(filepath):
        return True
    if sys.stdin is not None and sys.stdin.isatty():
        answer = input(f"[WARNING] {filepath} already exists - overwrite? [y/n] ").strip().lower()
        while answer not in ("y", "n"):
            answer = input('Enter "y" (overwrite) or "n" (cancel).').strip().lower()
        return answer == "y"
    raise FileExistsError(f"File {filepath!r} already exists and `overwrite=False`. Pass "
                          "`overwrite=True` to replace it, or choose another path.")


@contextlib.contextmanager
def atomic_write(filepath):
    """Yield a temporary path next to `filepath`; on success it atomically becomes `filepath`."""
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(filepath)}.", suffix=".tmp",
                               dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; use normal rights
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_path(directory, directory=True)


def write_bytes(filepath, data):
    """Atomically write `data` (bytes) to `filepath`."""
    with atomic_write(filepath) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
