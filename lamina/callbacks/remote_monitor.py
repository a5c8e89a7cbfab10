"""`RemoteMonitor`: posts the epoch logs to an HTTP server."""

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _is_chief

__all__ = ["RemoteMonitor"]


class RemoteMonitor(Callback):
    """Callback used to stream events to a server.

    At each epoch end, an HTTP POST is sent to `root + path` with the epoch
    logs and `"epoch"` as a JSON object: as the form field `field`
    (`application/x-www-form-urlencoded`) or, with `send_as_json=True`, as
    the `application/json` body. An unreachable server only warns.

    Args:
        root: Root url of the target server.
        path: Path relative to `root` to which the events will be sent.
        field: Form field under which the JSON data is sent (form mode).
        headers: Optional dict of custom HTTP headers.
        send_as_json: Whether to send the request as `application/json`.
        timeout: Seconds to wait for the server before giving up (warns).
    """

    def __init__(
        self,
        root="http://localhost:9000",
        path="/publish/epoch/end/",
        field="data",
        headers=None,
        send_as_json=False,
        timeout=10.0,
    ):
        super().__init__()
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json
        self.timeout = timeout

    def on_epoch_end(self, epoch, logs=None):
        if not _is_chief():
            return
        send = {"epoch": epoch}
        for key, value in (logs or {}).items():
            if isinstance(value, (np.ndarray, np.generic)):
                value = value.tolist() if isinstance(value, np.ndarray) else value.item()
            send[key] = value
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode(
                "utf-8"
            )
            headers.setdefault(
                "Content-Type", "application/x-www-form-urlencoded"
            )
        request = urllib.request.Request(
            self.root + self.path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError:
            pass  # the server answered; like Keras, its status is not checked
        except (urllib.error.URLError, OSError, ValueError):
            warnings.warn(
                f"Could not reach RemoteMonitor root server at {self.root}",
                stacklevel=2,
            )
