"""Keras-style progress bar (`keras.utils.Progbar`).

Values handed to `update` may be torch tensors (possibly on an accelerator):
they are stored as given and only read back to the host when a line is
drawn, so a bar that redraws every `interval` seconds costs one device sync
per redraw, not one per step.
"""

import math
import os
import sys
import time

import numpy as np

__all__ = ["Progbar"]

_BAR_CHAR = "\u2501"  # the heavy horizontal line Keras 3 draws with


def _is_tensor(value):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _to_python(values):
    """Converts a list of values (tensors, numpy, numbers) to host values.

    Scalar tensors become Python floats, read back with one sync per
    (device, dtype) group rather than one per value; other tensors become
    numpy arrays; numpy scalars become floats; anything else is unchanged.
    """
    out = list(values)
    groups = {}
    for i, v in enumerate(out):
        if _is_tensor(v):
            if v.numel() == 1:
                groups.setdefault((v.device, v.dtype), []).append(i)
            else:
                out[i] = v.detach().cpu().numpy()
        elif isinstance(v, np.ndarray) and v.ndim == 0:
            out[i] = v.item()
        elif isinstance(v, np.generic):
            out[i] = v.item()
    if groups:
        import torch

        for indices in groups.values():
            if len(indices) == 1:
                host = [out[indices[0]].detach().reshape(()).item()]
            else:
                stacked = torch.stack(
                    [out[i].detach().reshape(()) for i in indices]
                )
                host = stacked.cpu().tolist()
            for i, h in zip(indices, host):
                out[i] = h
    return out


def _print(message):
    """Writes `message` to stdout as Keras's `io_utils.print_msg` does."""
    try:
        sys.stdout.write(message)
    except UnicodeEncodeError:
        message = message.replace(_BAR_CHAR, "=")
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        sys.stdout.write(
            message.encode(encoding, errors="ignore").decode(encoding)
        )
    sys.stdout.flush()


def _dynamic_display():
    """True where `\\r` redraws work: a terminal, Jupyter or PyCharm."""
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        tty = bool(isatty and isatty())
    except ValueError:  # closed stream
        tty = False
    return tty or "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


def _format_value(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        value = float(np.mean(value))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value}"
    if abs(value) > 1e-3:
        return f"{value:.4f}"
    return f"{value:.4e}"


class Progbar:
    """Displays a progress bar.

    Args:
        target: Total number of steps expected, `None` if unknown.
        width: Progress bar width on screen.
        verbose: Verbosity mode, 0 (silent), 1 (verbose), 2 (semi-verbose).
        interval: Minimum visual progress update interval (in seconds).
        stateful_metrics: Iterable of names of metrics that should *not* be
            averaged over time (displayed as given).
        stateless_metrics: Iterable of names of metrics that *should* be
            averaged over time; all others are displayed as given. Only one of
            `stateful_metrics` and `stateless_metrics` may be passed. If
            neither is passed, every metric is averaged.
        unit_name: Display name for step counts (usually "step" or "sample").

    On a terminal (or Jupyter) the line is redrawn in place at most every
    `interval` seconds; elsewhere (a pipe, a log file) only the final line
    of each bar is printed.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Only one of `stateful_metrics` or `stateless_metrics` can be "
                f"provided. Received: stateful_metrics={stateful_metrics}, "
                f"stateless_metrics={stateless_metrics}"
            )
        if verbose not in (0, 1, 2):
            raise ValueError(
                f"Expected `verbose` to be 0, 1 or 2. Received: verbose={verbose}"
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        self._dynamic_display = _dynamic_display()
        self._seen_so_far = 0
        self._values = {}  # name -> [sum or value, count]
        self._values_order = []
        self._start = time.time()
        self._last_update = 0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def _is_stateless(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def update(self, current, values=None, finalize=None):
        """Updates the progress bar.

        Args:
            current: Index of current step.
            values: List of tuples `(name, value_for_last_step)`. Stateful
                metrics are displayed as given, others as their average over
                the steps seen.
            finalize: Whether this is the last update for the progress bar.
                If `None`, defaults to `current >= self.target`.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or ():
            if name not in self._values:
                self._values_order.append(name)
            if self._is_stateless(name) and not finalize:
                weight = max(current - self._seen_so_far, 1)
                if name in self._values:
                    entry = self._values[name]
                    entry[0] = entry[0] + value * weight
                    entry[1] += weight
                else:
                    self._values[name] = [value * weight, weight]
            else:
                self._values[name] = [value, 1]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if not finalize and (
                not self._dynamic_display
                or now - self._last_update < self.interval
            ):
                return
            self._draw(current, now, time_per_unit, finalize)
        elif self.verbose == 2:
            if finalize and self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                line = f"{current:{digits}d}/{self.target}"
                line += f" - {now - self._start:.0f}s -"
                line += self._format_time(time_per_unit, self.unit_name)
                line += self._format_values()
                _print(line + "\n")
        self._last_update = now

    def add(self, n, values=None):
        """Advances the bar by `n` steps."""
        self.update(self._seen_so_far + n, values)

    def _draw(self, current, now, time_per_unit, finalize):
        color = self._dynamic_display

        def style(text, code):
            return f"\x1b[{code}m{text}\x1b[0m" if color else text

        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            bar = style(f"{current:{digits}d}/{self.target}", "1") + " "
            done = min(int(self.width * current / self.target), self.width)
            if done > 0:
                bar += style(_BAR_CHAR * done, "32")
            bar += style(_BAR_CHAR * (self.width - done), "37")
            if finalize:
                info = " " + style(f"{now - self._start:.0f}s", "1")
            else:
                eta = time_per_unit * (self.target - current)
                if eta > 3600:
                    eta_text = "%d:%02d:%02d" % (
                        eta // 3600,
                        (eta % 3600) // 60,
                        eta % 60,
                    )
                elif eta > 60:
                    eta_text = "%d:%02d" % (eta // 60, eta % 60)
                else:
                    eta_text = "%ds" % eta
                info = " " + style(eta_text, "1")
        else:
            bar = "%7d/Unknown" % current
            info = " " + style(f"{now - self._start:.0f}s", "1")
        info += self._format_time(time_per_unit, self.unit_name)
        info += self._format_values()
        line = bar + info
        message = line
        if self._dynamic_display:
            visible = len(_strip_ansi(line))
            message = "\r" + line
            if self._prev_total_width > visible:
                message += " " * (self._prev_total_width - visible)
            self._prev_total_width = visible
        if finalize or not self._dynamic_display:
            message += "\n"
        _print(message)

    def _format_values(self):
        if not self._values_order:
            return ""
        entries = [self._values[k] for k in self._values_order]
        host = _to_python([e[0] for e in entries])
        text = ""
        for name, entry, value in zip(self._values_order, entries, host):
            entry[0] = value  # keep the host copy; no second sync
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = value / max(1, entry[1])
            elif isinstance(value, np.ndarray):
                value = float(np.mean(value)) / max(1, entry[1])
            text += f" - {name}: {_format_value(value)}"
        return text

    @staticmethod
    def _format_time(time_per_unit, unit_name):
        """Formats a duration per unit as `1s/step`, `12ms/step`, `3us/step`."""
        if time_per_unit >= 1 or time_per_unit == 0:
            return f" {time_per_unit:.0f}s/{unit_name}"
        if time_per_unit >= 1e-3:
            return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
        return f" {time_per_unit * 1e6:.0f}us/{unit_name}"

    def _estimate_step_duration(self, current, now):
        """Seconds per step, ignoring the (usually slow) first step."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit


def _strip_ansi(text):
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\x1b":
            end = text.find("m", i)
            i = end + 1 if end != -1 else len(text)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
