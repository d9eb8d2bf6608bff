//! The listener: accepts client connections and serves the router on each,
//! with every wait bounded.
//!
//! - at most `http.max_connections` connections at once (further ones wait
//!   in the kernel's accept queue), and at most
//!   `http.max_connections_per_client` from one address (further ones are
//!   closed at once, so one client cannot take every place);
//! - a request's headers must arrive within `http.header_timeout`, counted
//!   from the connection's start or the end of the previous response (so an
//!   idle keep-alive connection closes then too);
//! - a request's body within `http.body_timeout` (a layer on the router);
//! - a connection that starts no request within `http.header_timeout` of
//!   opening, or none for `http.idle_timeout` after, while none is in
//!   progress (an answer still streaming counts), is closed: bytes that
//!   carry no request (HTTP/2 PINGs) keep nothing open;
//! - at most `http.max_streams_per_connection` HTTP/2 streams at once;
//! - a shutdown waits at most `http.shutdown_grace` for requests in flight.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::places::Places;
use crate::config::HttpSettings;

/// Serve `app` on `listener` until `shutdown` resolves, then give the
/// requests in flight `http.shutdown_grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(http.max_streams_per_connection);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(http.max_connections));
    let clients: Arc<Places<IpAddr>> = Arc::default();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(place) = clients.admit(&client.ip(), http.max_connections_per_client) else {
            tracing::debug!(client = %client.ip(), "closing a connection over the client's cap");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = TowerToHyperService::new(Busy {
            app: app.clone(),
            activity: activity.clone(),
            client,
        });
        let builder = builder.clone();
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let (first, idle) = (http.header_timeout, http.idle_timeout);
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = activity.idle_for(first, idle) => {
                    tracing::debug!("closing a connection that carries no request");
                }
            }
            drop((permit, place));
        });
    }
    drop(listener);
    if tokio::time::timeout(http.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?http.shutdown_grace,
            "requests still in flight after the shutdown grace; closing their connections"
        );
    }
    Ok(())
}

/// The router, counting the connection's requests in progress (until the
/// last byte of the answer is sent: a slow upstream call or a stream is
/// not an idle connection), and telling each request who connected.
#[derive(Clone)]
struct Busy {
    app: Router,
    activity: Arc<Activity>,
    client: SocketAddr,
}

impl<B> tower::Service<axum::http::Request<B>> for Busy
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        let app = self.app.clone();
        let waiting = Waiting::start(self.activity.clone());
        request.extensions_mut().insert(ConnectInfo(self.client));
        Box::pin(async move {
            let answer = tower::ServiceExt::oneshot(app, request).await;
            // The request is in progress until its answer's body ends.
            Ok(super::holding::until_sent(answer?, waiting))
        })
    }
}

/// One request in progress; it stops counting when dropped, also when the
/// request is abandoned (an HTTP/2 stream reset).
struct Waiting(Arc<Activity>);

impl Waiting {
    fn start(activity: Arc<Activity>) -> Self {
        activity.started.store(true, Ordering::Relaxed);
        activity.touch();
        activity.waiting.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.touch();
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a request last started or ended on a connection, in milliseconds
/// since `start`; whether one ever started; how many are in progress.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    started: AtomicBool,
    waiting: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            started: AtomicBool::new(false),
            waiting: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once no request started within `first` of the connection's
    /// start, or, after one did, none was in progress for `limit`.
    async fn idle_for(self: Arc<Self>, first: Duration, limit: Duration) {
        loop {
            if self.waiting.load(Ordering::Relaxed) > 0 {
                self.touch();
            }
            let limit = match self.started.load(Ordering::Relaxed) {
                true => limit,
                false => first,
            };
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let idle = self.start.elapsed().saturating_sub(last);
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }
}
