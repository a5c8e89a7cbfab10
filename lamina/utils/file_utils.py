"""`get_file`: download a file once into the Keras cache folder and verify its hash.

>>> path = get_file("vgg16_weights.h5", "https://example.com/vgg16_weights.h5",
...                 cache_subdir="models", file_hash="64373286793e3c8b2b4e3219cbf3544b")

The cache is `$KERAS_HOME/<cache_subdir>` (or `~/.keras/<cache_subdir>`; `/tmp/.keras` when
that is not writable). A cached file whose hash matches is used as is; a download goes to a
temporary file in the same folder and becomes the cached file only once it is complete and
its hash checks out.
"""
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile

from lamina.saving.atomic import atomic_write

_CHUNK = 65535


def keras_home():
    """The cache root: `$KERAS_HOME`, else `~/.keras`."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def resolve_hasher(algorithm, file_hash=None):
    """A hashlib object for `"sha256"`, `"md5"` or `"auto"` (sha256 for a 64-digit hash)."""
    if algorithm not in ("auto", "sha256", "md5"):
        raise ValueError("`hash_algorithm` must be one of 'auto', 'sha256', 'md5'. "
                         f"Received: hash_algorithm={algorithm!r}")
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None
                                 and len(str(file_hash)) == 64):
        return hashlib.sha256()
    return hashlib.md5()


def hash_file(fpath, algorithm="sha256", chunk_size=_CHUNK):
    """The hex digest of a file (`algorithm` a name or a hashlib object)."""
    hasher = resolve_hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=_CHUNK):
    """Whether the file's hash equals `file_hash`."""
    hasher = resolve_hasher(algorithm, file_hash)
    return hash_file(fpath, hasher, chunk_size) == str(file_hash)


def _algorithm_name(algorithm, file_hash):
    return resolve_hasher(algorithm, file_hash).name


def _safe_members(archive, target):
    """Refuse archive entries that would land outside `target` (path traversal, links)."""
    root = os.path.realpath(target)
    if isinstance(archive, zipfile.ZipFile):
        names = archive.namelist()
    else:
        names = []
        for member in archive.getmembers():
            if member.issym() or member.islnk() or member.isdev():
                continue
            names.append(member.name)
    for name in names:
        path = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([root, path]) != root:
            continue
        yield name


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract a tar or zip archive into `path`; True when the file was an archive."""
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else archive_format
    formats = [formats] if isinstance(formats, str) else list(formats)
    for fmt in formats:
        if fmt == "tar":
            is_match, opener = tarfile.is_tarfile, tarfile.open
        elif fmt == "zip":
            is_match, opener = zipfile.is_zipfile, zipfile.ZipFile
        else:
            raise ValueError(f"`archive_format` must be 'auto', 'tar', 'zip', None or a list of "
                             f"them. Received: archive_format={archive_format!r}")
        if not is_match(file_path):
            continue
        with opener(file_path) as archive:
            try:
                if isinstance(archive, zipfile.ZipFile):
                    archive.extractall(path, members=list(_safe_members(archive, path)))
                else:
                    members = set(_safe_members(archive, path))
                    archive.extractall(path, members=[m for m in archive.getmembers()
                                                      if m.name in members])
            except (tarfile.TarError, RuntimeError, KeyboardInterrupt):
                if os.path.isfile(path):
                    os.remove(path)
                elif os.path.isdir(path):
                    shutil.rmtree(path)
                raise
        return True
    return False


class _DownloadProgress:
    """`urlretrieve` report hook drawing a Keras `Progbar` in bytes."""

    def __init__(self):
        self.bar = None
        self.done = False

    def __call__(self, block_num, block_size, total_size):
        from lamina.utils.progbar import Progbar

        total = None if total_size is None or total_size < 0 else total_size
        if self.bar is None:
            self.bar = Progbar(total)
        current = block_num * block_size
        if total is None:
            self.bar.update(current)
        elif current < total:
            self.bar.update(current)
        elif not self.done:
            self.bar.update(total)
            self.done = True


def _download(origin, target):
    """Fetch `origin` into `target` atomically, with a progress bar."""
    with atomic_write(target) as tmp:
        try:
            urllib.request.urlretrieve(origin, tmp, _DownloadProgress())
        except urllib.error.HTTPError as error:
            raise OSError(f"Could not download '{os.path.basename(target)}' from {origin}: "
                          f"HTTP {error.code} {error.msg}") from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise OSError(
                f"Could not download '{os.path.basename(target)}' from {origin}: {reason}. "
                f"If this machine is offline, download the file elsewhere and place it at "
                f"{target}.") from error


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """Return the local path of `fname`, downloading it from `origin` when it is not cached.

    Args:
        fname: file name in the cache (default: the last part of `origin`'s path).
        origin: the URL to download from.
        file_hash: expected sha256 or md5 hex digest, checked on the cached and downloaded file.
        cache_subdir: folder under the cache root (`"models"` for application weights).
        hash_algorithm: `"auto"`, `"sha256"` or `"md5"`.
        extract: extract a tar/zip archive and return the extraction folder.
        cache_dir: cache root (default `$KERAS_HOME` or `~/.keras`).
        force_download: download even when a valid cached copy exists.
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    resolve_hasher(hash_algorithm, file_hash)  # validates the name early
    base = os.path.expanduser(os.fspath(cache_dir) if cache_dir is not None else keras_home())
    if os.path.isdir(base) and not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)

    given = fname is not None and os.fspath(fname) != ""
    fname = os.fspath(fname) if given else os.path.basename(urllib.parse.urlsplit(origin).path)
    if not fname:
        raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. "
                         "Please specify the `fname` argument.")
    if os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify the "
                         f"file's parent directory, use the `cache_dir` argument. "
                         f"Received: fname={fname}")

    if extract or untar:
        if given and "." in fname:
            target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[:fname.find('.')]}_extracted")
        else:
            target = os.path.join(datadir, f"{fname}_archive")
            extraction_dir = os.path.join(datadir, fname)
    else:
        target = os.path.join(datadir, fname)

    download = force_download or not os.path.exists(target)
    if not download and file_hash is not None and not validate_file(target, file_hash,
                                                                    hash_algorithm):
        print(f"A local file was found, but it seems to be incomplete or outdated because the "
              f"{_algorithm_name(hash_algorithm, file_hash)} file hash does not match the "
              f"original value of {file_hash} so we will re-download the data.")
        download = True

    if download:
        print(f"Downloading data from {origin}")
        _download(origin, target)
        if file_hash is not None and not validate_file(target, file_hash, hash_algorithm):
            actual = hash_file(target, resolve_hasher(hash_algorithm, file_hash))
            os.remove(target)
            raise ValueError(
                f"Incomplete or corrupted file detected. The "
                f"{_algorithm_name(hash_algorithm, file_hash)} file hash of '{fname}' "
                f"downloaded from {origin} does not match the provided value of {file_hash} "
                f"(got {actual}).")

    if extract or untar:
        if not extract_archive(target, extraction_dir, "tar" if untar else archive_format):
            warnings.warn("Could not extract archive.", stacklevel=2)
        return extraction_dir
    return target
