//! Accepting connections by hand on hyper's HTTP/1, so that a slow or silent client costs
//! a bounded amount: each socket has a header-read and an idle timeout (enforced by
//! [`Activity::expired`]), each request body a read deadline ([`TimedBody`]), and the
//! server a connection cap ([`Connections`]). On shutdown, idle connections close at once
//! and busy ones finish their request, within the shutdown grace.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::connections::{Activity, ConnectionTimeouts, Connections};
use super::metrics::Metrics;

/// What bounds connections and request bodies (`xbhost serve` flags).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most (`--max-connections`).
    pub max_connections: usize,
    pub timeouts: ConnectionTimeouts,
    /// From a request's head to the last byte of its body (`--body-read-timeout-ms`).
    pub body_read: Duration,
}

/// File descriptors kept for everything but connections: the store's files, the event
/// log, plugin files, uploads being staged.
const RESERVED_FILES: usize = 64;

/// Raises the soft open-file limit to the hard one and returns how many connections fit
/// in it (at most `wanted`), so that accepting never fails for want of a descriptor.
pub fn connections_that_fit(wanted: usize) -> usize {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    let soft = unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let fit = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_FILES)
        .max(1);
    if fit < wanted {
        tracing::warn!(
            wanted,
            fit,
            open_file_limit = soft,
            "--max-connections is more than the open-file limit allows; using {fit}"
        );
    }
    wanted.min(fit)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the connections
/// finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let connections = Connections::new(limits.max_connections);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender: the channel closes when the last one ends.
    let (alive, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of descriptors or a connection reset before accept: do not spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match connections.admit() {
            Some(admitted) => {
                metrics.set_open_connections(connections.open());
                let task_metrics = metrics.clone();
                let task = Connection {
                    activity: admitted.activity.clone(),
                    router: router.clone(),
                    limits,
                    metrics: metrics.clone(),
                };
                let (stopping, alive) = (stopping.clone(), alive.clone());
                let connections = connections.clone();
                tokio::spawn(async move {
                    task.run(stream, stopping).await;
                    drop(admitted);
                    task_metrics.set_open_connections(connections.open());
                    drop(alive);
                });
            }
            None => {
                metrics.connection_closed("refused_at_cap");
                tokio::spawn(refuse(stream, limits.max_connections));
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive);
    if tokio::time::timeout(grace, all_done.recv()).await.is_err() {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            open = connections.open(),
            "connections still busy after the shutdown grace; stopping anyway"
        );
    }
}

/// At the cap with every connection busy: a short 503, then close.
async fn refuse(mut stream: TcpStream, cap: usize) {
    use tokio::io::AsyncWriteExt as _;
    let body = format!(
        "{{\"error\":\"the server has {cap} connections open, all busy (--max-connections); retry shortly\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
}

struct Connection {
    activity: Arc<Activity>,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Tracked {
            stream,
            activity: self.activity.clone(),
        });
        let (activity, router, body_read) =
            (self.activity.clone(), self.router, self.limits.body_read);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = activity.begin();
            let mut router = router.clone();
            let request = request.map(|body| {
                if body.is_end_stream() {
                    Body::new(body)
                } else {
                    Body::new(TimedBody::new(body, body_read, activity.clone()))
                }
            });
            async move {
                std::future::poll_fn(|cx| {
                    tower_service::Service::<Request<Body>>::poll_ready(&mut router, cx)
                })
                .await?;
                let response = tower_service::Service::call(&mut router, request).await?;
                // The request stays in flight until its response body is written.
                Ok::<_, Infallible>(response.map(move |body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    }))
                }))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // The header-read and idle timeouts are `Activity::expired`'s.
            .header_read_timeout(None)
            .keep_alive(true);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let expired = self.activity.expired(self.limits.timeouts);
        tokio::pin!(expired);
        let mut shutting_down = *stopping.borrow();
        if shutting_down {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                reason = &mut expired => {
                    // Dropping the connection closes the socket.
                    tracing::debug!(reason = reason.label(), "closing a connection");
                    self.metrics.connection_closed(reason.label());
                    break;
                }
                changed = stopping.changed(), if !shutting_down => {
                    if changed.is_err() || *stopping.borrow() {
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// The socket, telling its [`Activity`] when bytes arrive.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl Tracked {
    /// A write waits for the client to read, or made progress.
    fn note_write(&self, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(),
            _ => {}
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that fails with [`BodyTimeout`] if it has not all arrived by its
/// deadline (set when the request's head was read). Until it has arrived, or is dropped
/// unread, its connection waits on the client and may be evicted at the cap.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    activity: Arc<Activity>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, activity: Arc<Activity>) -> TimedBody {
        activity.body_begun();
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            activity,
        }
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        self.activity.body_done();
    }
}

/// The error of a body that came too slowly; `read_body` answers it with 408.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} ms (--body-read-timeout-ms)",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for BodyTimeout {}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.activity.body_done();
                Poll::Ready(None)
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
