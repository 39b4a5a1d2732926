"""A small metrics registry rendered in the Prometheus text format (version 0.0.4).

Our own rather than ``prometheus-client``: the p2p hot path counts every message, and a
plain attribute or dict update here costs ~50-100 ns where prometheus-client's labelled
``inc()`` takes a lock and costs about ten times that; the node also has no other use for
the library (no push gateway, no multiprocess mode), so one dependency fewer.

Metrics are collected on scrape: counters and gauges hold numbers, ``GaugeFunc`` asks a
callback (peer counts, pool sizes, head number) only when ``/metrics`` is read, so nothing
has to be kept in sync between scrapes. Like geth's default registry, one process-wide
``DEFAULT_REGISTRY`` holds everything; several nodes in one process (tests) share it, so
tests compare differences rather than absolute values. What belongs to one node (its peers,
pool, head) goes in that node's own registry, rendered together with the default one.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("ethnode.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text exposition format
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    """One metric family as exposed: samples are (sample name, labels, value)."""

    name: str
    kind: str  # counter, gauge, histogram, untyped
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)


class Collector(Protocol):
    name: str

    def collect(self) -> Iterable[Family]: ...


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid metric name {name!r}")
    return name


class Counter:
    """A monotonically increasing number; ``inc`` is a plain attribute update."""

    __slots__ = ("name", "help", "value")

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help, self.value = _check_name(name), help, 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def collect(self) -> Iterable[Family]:
        return [Family(self.name, "counter", self.help, [(self.name, (), self.value)])]


class Gauge:
    """A number that goes up and down, set by whoever knows it."""

    __slots__ = ("name", "help", "value")

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help, self.value = _check_name(name), help, 0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def collect(self) -> Iterable[Family]:
        return [Family(self.name, "gauge", self.help, [(self.name, (), self.value)])]


class GaugeFunc:
    """A gauge read from ``fn`` at scrape time.

    ``fn`` returns a number, or with ``labels`` a mapping from label-value tuples to
    numbers. A callback that raises is skipped for that scrape (logged at debug), so one
    broken source never hides the rest.
    """

    def __init__(self, name: str, help: str, fn: Callable[[], object], labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.fn = _check_name(name), help, fn
        for label in labels:
            if not _LABEL.match(label):
                raise ValueError(f"invalid label name {label!r}")
        self.labels = tuple(labels)

    def collect(self) -> Iterable[Family]:
        try:
            value = self.fn()
        except Exception as exc:  # noqa: BLE001 - a collector must not break the scrape
            log.debug("Metric %s unavailable: %s", self.name, exc)
            return []
        fam = Family(self.name, "gauge", self.help)
        if self.labels:
            assert isinstance(value, Mapping)
            for key, v in value.items():
                fam.samples.append((self.name, tuple(zip(self.labels, map(str, key), strict=True)), float(v)))
        else:
            fam.samples.append((self.name, (), float(value)))  # type: ignore[arg-type]
        return [fam]


class Histogram:
    """Observations counted into cumulative buckets, with their sum and count."""

    def __init__(self, name: str, help: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.name, self.help = _check_name(name), help
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def collect(self) -> Iterable[Family]:
        fam = Family(self.name, "histogram", self.help)
        acc = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            acc += n
            fam.samples.append((self.name + "_bucket", (("le", _fmt(bound)),), acc))
        fam.samples.append((self.name + "_sum", (), self.sum))
        fam.samples.append((self.name + "_count", (), self.count))
        return [fam]


class Registry:
    """Named collectors, rendered together. Registering a name again replaces the old one,
    so a service restarted in the same process rebinds its callbacks."""

    def __init__(self) -> None:
        self._collectors: dict[str, Collector] = {}
        self._lock = threading.Lock()  # scrapes may come from another thread (tests, tools)

    def register(self, collector: Collector) -> Collector:
        with self._lock:
            self._collectors[collector.name] = collector
        return collector

    def unregister(self, name: str) -> None:
        with self._lock:
            self._collectors.pop(name, None)

    def get(self, name: str) -> Collector | None:
        return self._collectors.get(name)

    def counter(self, name: str, help: str) -> Counter:
        existing = self._collectors.get(name)
        if isinstance(existing, Counter):
            return existing
        return self.register(Counter(name, help))  # type: ignore[return-value]

    def gauge(self, name: str, help: str) -> Gauge:
        existing = self._collectors.get(name)
        if isinstance(existing, Gauge):
            return existing
        return self.register(Gauge(name, help))  # type: ignore[return-value]

    def gauge_func(self, name: str, help: str, fn: Callable[[], object], labels: Sequence[str] = ()) -> GaugeFunc:
        return self.register(GaugeFunc(name, help, fn, labels))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        existing = self._collectors.get(name)
        if isinstance(existing, Histogram):
            return existing
        return self.register(Histogram(name, help, buckets))  # type: ignore[return-value]

    def families(self) -> list[Family]:
        with self._lock:
            collectors = sorted(self._collectors.items())
        out: list[Family] = []
        for _, collector in collectors:
            out.extend(collector.collect())
        return out

    def render(self, *others: Registry) -> str:
        """Every metric of this registry (and ``others``) in the text exposition format, sorted by name."""
        return render([fam for reg in (self, *others) for fam in reg.families()])


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in sorted(families, key=lambda f: f.name):
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for name, labels, value in fam.samples:
            if labels:
                text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
                lines.append(f"{name}{{{text}}} {_fmt(value)}")
            else:
                lines.append(f"{name} {_fmt(value)}")
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**63):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


DEFAULT_REGISTRY = Registry()

__all__ = [
    "Registry", "Counter", "Gauge", "GaugeFunc", "Histogram", "Family", "Collector", "DEFAULT_REGISTRY",
    "DEFAULT_BUCKETS", "CONTENT_TYPE",
]
