"""A Prometheus endpoint for the live pipeline (``pfes run --metrics-port N``).

Two parts, both on a private ``CollectorRegistry`` (nothing global):

* :class:`PromMetrics` is the pipeline's :class:`~stream.pipeline_metrics.Metrics` that also
  observes each frame's stage times and each event's latency into histograms (a few
  microseconds per frame); pass it as ``Pipeline(metrics=...)``;
* a collector reads the counters the pipeline keeps anyway (frames, drops, faces, tracks,
  tracking noise) and the sources' ``connected`` / ``reconnects`` at scrape time.

Events by kind are counted by :meth:`PromMetrics.count_event` (call it from ``on_event``).
Metric names are listed in docs/dashboard.md ("Metrics").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pfes.errors import InputError
from stream.pipeline_metrics import Metrics

__all__ = ["PromMetrics", "MetricsServer", "LATENCY_BUCKETS_S"]

LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class PromMetrics(Metrics):
    """Metrics that also feed Prometheus histograms (see module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None, **kw: Any):
        super().__init__(**kw)
        self.registry = registry or CollectorRegistry()
        self.stage_seconds = Histogram(
            "pfes_stage_latency_seconds",
            "per-frame time of each pipeline stage (compute: their sum)",
            ["stream", "stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.event_seconds = Histogram(
            "pfes_event_latency_seconds",
            "closing frame's arrival to the event's publishing",
            ["stream"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.events_total = Counter(
            "pfes_events", "events published, by kind", ["stream", "kind"], registry=self.registry
        )
        self._children: dict[tuple[str, str], Any] = {}

    def record_frame(self, name: str, stages_ms: dict[str, float], faces: int) -> None:
        super().record_frame(name, stages_ms, faces)
        total = 0.0
        for stage, ms in stages_ms.items():
            self._hist(name, stage).observe(ms / 1000.0)
            total += ms
        self._hist(name, "compute").observe(total / 1000.0)

    def _hist(self, name: str, stage: str) -> Any:
        h = self._children.get((name, stage))
        if h is None:  # labels() takes a lock and a dict lookup: cache the child
            h = self._children[(name, stage)] = self.stage_seconds.labels(name, stage)
        return h

    def count_event(self, ev: Any) -> None:
        """One published event (``stream.events.Event``): by kind, and its latency."""
        self.events_total.labels(ev.stream, ev.kind).inc()
        self.event_seconds.labels(ev.stream).observe(ev.latency_ms / 1000.0)


class _PipelineCollector(Collector):
    def __init__(self, metrics: Metrics, sources: Sequence[Any], publisher: Any = None):
        self.metrics = metrics
        self.sources = list(sources)
        self.publisher = publisher

    def collect(self) -> Iterator[Any]:
        frames = CounterMetricFamily("pfes_frames", "frames processed", labels=["stream"])
        face = CounterMetricFamily("pfes_frames_with_face", "frames with a face", labels=["stream"])
        dropped = CounterMetricFamily(
            "pfes_dropped_frames",
            "frames dropped: by the source (newest-frame policy) or at the engine queue",
            labels=["stream", "where"],
        )
        faces = GaugeMetricFamily("pfes_faces", "faces in the latest frame", labels=["stream"])
        tracks = GaugeMetricFamily("pfes_tracks", "live face tracks", labels=["stream"])
        noise = GaugeMetricFamily(
            "pfes_tracking_noise_iod",
            "brow jitter of the stream's tracks over the last 8 s (inter-ocular distances)",
            labels=["stream"],
        )
        ended = GaugeMetricFamily(
            "pfes_source_ended", "1 once the source has ended", labels=["stream"]
        )
        conn = GaugeMetricFamily(
            "pfes_source_connected", "1 while the source is connected", labels=["stream"]
        )
        reconn = CounterMetricFamily(
            "pfes_source_reconnects", "reconnections of a live source", labels=["stream"]
        )
        for s in self.sources:
            c = self.metrics.stream(s.name)
            frames.add_metric([s.name], c.frames)
            face.add_metric([s.name], c.frames_with_face)
            dropped.add_metric([s.name, "source"], c.source_dropped)
            dropped.add_metric([s.name, "queue"], c.queue_dropped)
            faces.add_metric([s.name], c.faces)
            tracks.add_metric([s.name], c.tracks)
            if c.tracking_noise is not None:
                noise.add_metric([s.name], c.tracking_noise)
            ended.add_metric([s.name], float(c.ended))
            conn.add_metric([s.name], float(bool(getattr(s, "connected", True))))
            reconn.add_metric([s.name], int(getattr(s, "reconnects", 0)))
        yield from (frames, face, dropped, faces, tracks, noise, ended, conn, reconn)
        if self.publisher is not None:
            pub = CounterMetricFamily(
                "pfes_publish_dropped", "messages the ZeroMQ publisher could not send"
            )
            pub.add_metric([], int(getattr(self.publisher, "dropped", 0)))
            yield pub


class MetricsServer:
    """``/metrics`` over HTTP for one pipeline run (a context manager).

    Binds ``host`` (loopback by default) and ``port`` (0: a free one, see ``self.port``).
    """

    def __init__(
        self,
        metrics: PromMetrics,
        sources: Sequence[Any],
        publisher: Any = None,
        port: int = 9108,
        host: str = "127.0.0.1",
    ):
        if not 0 <= port <= 65535:
            raise InputError(f"--metrics-port must be 0..65535, got {port}")
        metrics.registry.register(_PipelineCollector(metrics, sources, publisher))
        try:
            self._server, self._thread = start_http_server(
                port, addr=host, registry=metrics.registry
            )
        except OSError as e:
            raise InputError(f"cannot serve metrics on {host}:{port}: {e.strerror or e}") from e
        self.host = host
        self.port = int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
