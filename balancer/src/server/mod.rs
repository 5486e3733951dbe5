//! The client-facing listener: accepts connections and serves each with the
//! balancer's own HTTP/1.1 loop ([`http1`]), which hands to hyper (HTTP/1.1
//! and h2c, hyper-util's auto builder, with the client limits from the
//! config) what it does not serve itself. On shutdown it stops accepting and
//! drains in-flight requests (up to `shutdown_timeout`), as mini-redis's
//! `run(listener, shutdown)`.

pub mod http1;
pub mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::config::Config;
use crate::error::Error;
use crate::proxy::forward::ConnInfo;
use crate::proxy::Proxy;
use crate::state::State;

fn builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // Slowloris: the whole request head must arrive within this.
        .header_read_timeout(config.proxy.client_header_timeout)
        // A head larger than this is answered 431 by hyper.
        .max_buf_size(config.proxy.max_header_size)
        // nginx's `keepalive_timeout 0`: one request per connection.
        .keep_alive(!config.proxy.keepalive_timeout.is_zero())
        // Do not read mid-request to notice a client's early close (our own
        // loop does not either): that read reserves a fresh 8 KiB buffer
        // per request while the request head is still borrowed. As nginx's
        // `proxy_ignore_client_abort on`: a request whose client left is
        // finished, then dropped.
        .half_close(true);
    b.http2().timer(TokioTimer::new());
    b
}

/// Serves until `shutdown` resolves, then drains. `admin`, if given, serves
/// the admin API on its own listener.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    let source = config.source.clone();
    let reloader = source.map(|path| {
        Box::new(move || crate::config::nginx::parse_file(&path))
            as Box<dyn Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync>
    });
    let state = State::new(config, reloader);
    serve_state(state, listener, admin, shutdown).await
}

/// Serves a prepared [`State`] (used by `run`, which also wires SIGHUP).
pub async fn serve_state(
    state: Arc<State>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    // One signal for everything: the admin listener, idle client
    // connections (close now) and busy ones (close after the response).
    let stop = CancellationToken::new();
    let admin_task = admin.map(|l| {
        let stopped = stop.clone().cancelled_owned();
        let app = admin::app(state.clone());
        tokio::spawn(async move {
            let r = axum::serve(l, app).with_graceful_shutdown(stopped).await;
            if let Err(e) = r {
                tracing::error!(error = %e, "admin listener failed");
            }
        })
    });

    let connections = TaskTracker::new();
    let mut generation = state.current();
    let mut http = Arc::new(builder(&generation.config));
    let shutdown_timeout = generation.config.shutdown_timeout;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let current = state.current();
                if current.number != generation.number {
                    http = Arc::new(builder(&current.config));
                    generation = current;
                }
                connections.spawn(serve_client(stream, addr, state.clone(), http.clone(), stop.clone()));
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    stop.cancel();
    connections.close();
    if tokio::time::timeout(shutdown_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
    state.stop();
    if let Some(t) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok(())
}

/// One client connection: our HTTP/1.1 loop first, then hyper if it hands
/// the connection over. On `stop`, an idle connection closes at once and a
/// busy one after its response.
async fn serve_client(
    stream: TcpStream,
    addr: SocketAddr,
    state: Arc<State>,
    http: Arc<auto::Builder<TokioExecutor>>,
    stop: CancellationToken,
) {
    let info = ConnInfo::new(addr);
    let io = match http1::serve(stream, &state, &info, &stop).await {
        http1::Outcome::Done => return,
        http1::Outcome::HandOff(io) => io,
    };
    // Not boxed: hyper's connection and the watchdog fit in the room our
    // loop's state takes (`connection_task_size` checks it).
    serve_hyper(io, info, state, http, stop).await;
}

/// The rest of a connection our loop handed over: hyper serves it, and
/// [`watch`] times it (and a tunnel after it) out.
async fn serve_hyper(
    io: http1::Prefixed,
    info: ConnInfo,
    state: Arc<State>,
    http: Arc<auto::Builder<TokioExecutor>>,
    stop: CancellationToken,
) {
    let limits = watch::Limits::from(&state.current().config.proxy);
    let activity = Arc::new(watch::Activity::default());
    let io = watch::Watched::new(io, activity.clone());
    let proxy = Proxy::new(state, info);
    let counter = activity.clone();
    let svc = hyper::service::service_fn(move |req| {
        let flight = watch::InFlight::start(&counter);
        let response = tower::Service::call(&mut proxy.clone(), req);
        async move { Ok::<_, Infallible>(flight.track(response.await?)) }
    });
    let watchdog = watch::watch(&activity, limits);
    tokio::pin!(watchdog);
    let result = {
        // In a block: hyper's connection (and the service holding a count
        // of `activity`) is gone once it ends.
        let conn = http.serve_connection_with_upgrades(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => break Some(r),
                expired = &mut watchdog => {
                    tracing::debug!(?expired, "client connection timed out");
                    break None;
                }
                () = stop.cancelled(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    };
    if let Some(Err(e)) = &result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
    // hyper's side is over; an upgraded connection lives on in its tunnel
    // (which holds the socket, and so `activity`), and the watchdog keeps
    // timing it until it ends or the balancer stops.
    let tunnel = Arc::strong_count(&activity) > 1;
    if result.is_some() && tunnel && !stop.is_cancelled() {
        tokio::select! {
            expired = &mut watchdog => {
                if expired.is_some() {
                    tracing::debug!(?expired, "tunnel timed out");
                }
            }
            () = stop.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    /// What an idle connection costs is mostly its task: the future of
    /// `serve_client`. hyper's part is boxed, so that future is our loop's
    /// (which holds the request path inline, by design) and does not grow
    /// with hyper's connection and the watchdog.
    #[tokio::test]
    async fn connection_task_size() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = l.accept().await.unwrap();
        let config = Config::new(addr, vec![ServerConfig::new(addr)]);
        let http = Arc::new(builder(&config));
        let state = State::new(config, None);
        let stop = CancellationToken::new();
        let info = ConnInfo::new(peer);
        let ours = std::mem::size_of_val(&http1::serve(
            TcpStream::connect(addr).await.unwrap(),
            &state,
            &info,
            &stop,
        ));
        let task = std::mem::size_of_val(&serve_client(stream, peer, state, http, stop));
        eprintln!("serve_client future: {task} bytes; http1::serve: {ours} bytes");
        assert!(task <= ours + 512, "{task} vs {ours}");
    }
}
