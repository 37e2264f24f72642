//! Prometheus metrics: requests by route and status, render latency, block failures by
//! plugin and kind (traps, timeouts, ...), new experiment assignments, and the event log's
//! delivery (events written, deferred, lost).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::events::ASSIGNED_EVENT;
use crate::request::{FailureKind, RenderOutput, View};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route pattern (`/courses/{course_key}/blocks/{usage_id}`), not the path, so
    /// ids do not multiply the series.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViewLabels {
    view: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    plugin: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct AssignmentLabels {
    /// Only with `--metrics-course-labels`: course keys can name who runs an experiment,
    /// and every course is a new series. Without it the label is left out.
    course: Option<String>,
    partition: String,
}

impl EncodeLabelSet for AssignmentLabels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel as _;
        if let Some(course) = &self.course {
            ("course", course.as_str()).encode(encoder.encode_label())?;
        }
        ("partition", self.partition.as_str()).encode(encoder.encode_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClosedLabels {
    reason: String,
}

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    render_seconds: Family<ViewLabels, Histogram>,
    block_failures: Family<FailureLabels, Counter>,
    assignments: Family<AssignmentLabels, Counter>,
    renders_in_flight: Gauge,
    connections_open: Gauge,
    connections_closed: Family<ClosedLabels, Counter>,
    course_labels: bool,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(false)
    }
}

impl Metrics {
    /// The metrics, with course keys in labels only when `course_labels` is set.
    pub fn new(course_labels: bool) -> Metrics {
        let mut registry = Registry::with_prefix("xbhost");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        let render_seconds = Family::<ViewLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "render_duration_seconds",
            "Time to render a block and its descendants, by view",
            render_seconds.clone(),
        );
        let block_failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "block_failures",
            "Blocks that failed and were replaced by a placeholder, by plugin and kind \
             (timeout, trap, panic, memory, block_error, output_too_large, unavailable)",
            block_failures.clone(),
        );
        let assignments = Family::<AssignmentLabels, Counter>::default();
        registry.register(
            "assignments",
            "Learners newly assigned to an experiment group, by partition (and course, with \
             --metrics-course-labels)",
            assignments.clone(),
        );
        let renders_in_flight = Gauge::default();
        registry.register(
            "renders_in_flight",
            "Renders and handler calls running now",
            renders_in_flight.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "HTTP connections open now",
            connections_open.clone(),
        );
        let connections_closed = Family::<ClosedLabels, Counter>::default();
        registry.register(
            "connections_closed_by_server",
            "Connections the server closed or refused, by reason (header_timeout, \
             idle_timeout, evicted at the connection cap, refused_at_cap)",
            connections_closed.clone(),
        );
        registry.register_collector(Box::new(EventDelivery));
        Metrics {
            registry,
            requests,
            render_seconds,
            block_failures,
            assignments,
            renders_in_flight,
            connections_open,
            connections_closed,
            course_labels,
        }
    }

    /// A connection the server closed of its own accord (or refused), by reason.
    pub fn connection_closed(&self, reason: &str) {
        self.connections_closed
            .get_or_create(&ClosedLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// How many connections are open.
    pub fn set_open_connections(&self, open: usize) {
        self.connections_open.set(open as i64);
    }
    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }

    /// Records a finished render: its latency, its failed blocks and new assignments.
    pub fn record_render(
        &self,
        course_key: &str,
        view: View,
        took: Duration,
        output: &RenderOutput,
    ) {
        self.render_seconds
            .get_or_create(&ViewLabels {
                view: crate::markup::view_class(view).to_string(),
            })
            .observe(took.as_secs_f64());
        for failure in &output.failures {
            self.record_failure(&failure.block_type, failure.kind);
        }
        for event in &output.events {
            if event.name == ASSIGNED_EVENT {
                let partition = event
                    .data
                    .get("partition_id")
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                self.assignments
                    .get_or_create(&AssignmentLabels {
                        course: self.course_labels.then(|| course_key.to_string()),
                        partition,
                    })
                    .inc();
            }
        }
    }

    /// Records a block that failed (in a render or a handler call).
    pub fn record_failure(&self, plugin: &str, kind: FailureKind) {
        self.block_failures
            .get_or_create(&FailureLabels {
                plugin: plugin.to_string(),
                kind: super::page::serde_name(&kind),
            })
            .inc();
    }

    /// Marks a render or handler call as running until the guard drops.
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.renders_in_flight.inc();
        InFlight(self.clone())
    }
}

/// The event log's delivery counters (`events::delivery_counts`), read at each scrape:
/// `xbhost_events_lost_total` is what an operator alerts on (events gone), deferred ones
/// wait in the store until the log takes writes again (`xbhost_events_waiting`).
#[derive(Debug)]
struct EventDelivery;

impl prometheus_client::collector::Collector for EventDelivery {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let counts = crate::events::delivery_counts();
        for (name, help, value) in [
            (
                "events_written",
                "Events appended to the event log",
                counts.written,
            ),
            (
                "events_lost",
                "Events neither written to the event log nor kept in the store: gone",
                counts.lost,
            ),
            (
                "events_deferred",
                "Events a failed write to the event log left in the store, to write later",
                counts.deferred,
            ),
            (
                "events_replayed",
                "Events written to the event log from the store, after a crash or a failed write",
                counts.replayed,
            ),
            (
                "event_log_write_errors",
                "Writes to the event log that failed",
                counts.write_errors,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let waiting = ConstGauge::new(counts.waiting as i64);
        waiting.encode(encoder.encode_descriptor(
            "events_waiting",
            "Events in the store waiting for the event log to take writes again",
            None,
            waiting.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.renders_in_flight.dec();
    }
}

/// Middleware: one tracing span per request, and the request counter.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    // A fixed set: clients choose methods, and every new label value is a new series.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    // The access log: one line per request at info (XBHOST_LOG=xbhost=info).
    tracing::info!(parent: &span, status, took_ms = started.elapsed().as_millis() as u64, "answered");
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status,
        })
        .inc();
    response
}
