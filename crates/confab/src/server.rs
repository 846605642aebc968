//! Serving with graceful shutdown: on SIGINT/SIGTERM stop accepting, let in-flight requests
//! finish (bounded by `server.shutdown_timeout_secs`), wait for tracked tasks, stop the
//! embedded engine (its worker threads joined, so none is inside llama.cpp at exit), close the
//! pool.
//! Plain HTTP, or HTTPS when the process has its `[server.tls]` (`crate::tls`), the
//! certificate files then watched for changes.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::app::Process;
use crate::tls::ServerTls;

/// Connections waiting to be accepted, per listening socket (what `TcpListener::bind` uses).
const LISTEN_BACKLOG: u32 = 1024;

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    app: Process,
    listener: TcpListener,
    shutdown_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let stopping = CancellationToken::new();
    let trigger = stopping.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        trigger.cancel();
    };
    if let Some(tls) = &app.tls {
        tls.watch(&app.tasks, app.shutdown.clone());
    }
    tracing::info!(
        addr = %addr,
        tls = app.tls.is_some(),
        threads = app.lanes.len().max(1),
        "listening"
    );
    let lanes = if app.lanes.is_empty() {
        let serving = serve_listener(
            listener,
            app.router.clone(),
            app.tls.clone(),
            stopping,
            shutdown_timeout,
        );
        until_done(serving, signal).await?;
        None
    } else {
        let mut lanes = Lanes::start(
            app.lanes.clone(),
            listener,
            app.tls.clone(),
            stopping.clone(),
            shutdown_timeout,
        )?;
        if let Err(e) = until_done(lanes.served(&stopping), signal).await {
            lanes.release().await;
            return Err(e);
        }
        Some(lanes)
    };
    app.shutdown.cancel();
    app.tasks.close();
    if tokio::time::timeout(shutdown_timeout, app.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish before the deadline");
    }
    // The serving threads' runtimes ran their share of the tracked tasks until here.
    if let Some(lanes) = lanes {
        lanes.release().await;
    }
    // Generations still running (requests cut off at the deadline, tasks that outlived it)
    // end here: a process that exits while a worker is inside llama.cpp can crash in the
    // library's static destructors. A worker stops at its next token, or after the prompt
    // batch it is evaluating: a second or two even when the configured timeout is zero.
    if let Some(inference) = &app.inference {
        inference
            .shutdown(shutdown_timeout.max(Duration::from_secs(2)))
            .await;
    }
    if let Some(db) = &app.db {
        db.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Runs `work` to its end, running `signal` beside it until then.
async fn until_done<T>(work: impl Future<Output = T>, signal: impl Future<Output = ()>) -> T {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return done,
        () = signal => {}
    }
    work.await
}

/// Binds `addr` for serving: with `SO_REUSEPORT` when `shared` (the gateway, whose serving
/// threads each open a socket on the same address), else as `TcpListener::bind` does.
pub async fn bind(addr: SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    if !shared {
        return TcpListener::bind(addr).await;
    }
    reuseport(addr)
}

/// A listening socket on `addr` with `SO_REUSEPORT` (call inside a runtime).
fn reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `stopping` is cancelled, then lets in-flight requests
/// finish for at most `shutdown_timeout`.
async fn serve_listener(
    listener: TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    stopping: CancellationToken,
    shutdown_timeout: Duration,
) -> std::io::Result<()> {
    let graceful = stopping.clone().cancelled_owned();
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        None => {
            // Small writes (SSE chunks, short JSON answers) must not wait for Nagle's algorithm.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            Box::pin(
                axum::serve(listener, make)
                    .with_graceful_shutdown(graceful)
                    .into_future(),
            )
        }
        // The TLS listener sets TCP_NODELAY itself; the empty tap is what lets axum hand the
        // peer's address to `ConnectInfo` for a listener other than its own.
        Some(tls) => Box::pin(
            axum::serve(tls.listener(listener).tap_io(|_| {}), make)
                .with_graceful_shutdown(graceful)
                .into_future(),
        ),
    };
    let deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(
                timeout_secs = shutdown_timeout.as_secs(),
                "in-flight requests cut off at the shutdown deadline"
            );
            Ok(())
        }
    }
}

/// The gateway's serving threads: each a current-thread runtime serving its own router on
/// its own socket, so a request, the connections it uses and the tasks that drive them stay
/// on one thread, without waking another (bench/RESULTS.md, the gateway hop).
struct Lanes {
    served: Vec<oneshot::Receiver<std::io::Result<()>>>,
    released: CancellationToken,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Lanes {
    /// One thread a router: the first on `listener`, each other on a socket of its own bound
    /// to the same address (`listener` was bound by [`bind`] with `SO_REUSEPORT`).
    fn start(
        routers: Vec<Router>,
        listener: TcpListener,
        tls: Option<ServerTls>,
        stopping: CancellationToken,
        shutdown_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let mut sockets = vec![listener.into_std()?];
        for _ in 1..routers.len() {
            let socket = reuseport(addr)
                .and_then(|l| l.into_std())
                .with_context(|| {
                    format!(
                        "cannot open another socket on {addr} for a serving thread (the first one \
                     must be bound by `server::bind` with SO_REUSEPORT)"
                    )
                })?;
            sockets.push(socket);
        }
        let released = CancellationToken::new();
        let mut lanes = Lanes {
            served: Vec::with_capacity(routers.len()),
            released: released.clone(),
            threads: Vec::with_capacity(routers.len()),
        };
        for (index, (router, socket)) in routers.into_iter().zip(sockets).enumerate() {
            let (done, served) = oneshot::channel();
            let (tls, stop, released) = (tls.clone(), stopping.clone(), released.clone());
            let thread = std::thread::Builder::new()
                .name(format!("confab-serve-{index}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = done.send(Err(e));
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let result = match TcpListener::from_std(socket) {
                            Ok(listener) => {
                                serve_listener(listener, router, tls, stop, shutdown_timeout).await
                            }
                            Err(e) => Err(e),
                        };
                        let _ = done.send(result);
                        // Tracked tasks spawned here (WebSocket pumps, pooled connections)
                        // keep running until the process has waited for them.
                        released.cancelled().await;
                    });
                });
            match thread {
                Ok(thread) => {
                    lanes.threads.push(thread);
                    lanes.served.push(served);
                }
                Err(e) => {
                    stopping.cancel();
                    lanes.released.cancel();
                    return Err(anyhow::Error::new(e).context("cannot start a serving thread"));
                }
            }
        }
        Ok(lanes)
    }

    /// Waits until every thread stopped serving; the first failure, if any, stops the others.
    async fn served(&mut self, stopping: &CancellationToken) -> anyhow::Result<()> {
        let waits = self.served.drain(..).map(|served| {
            let stopping = stopping.clone();
            async move {
                let result = match served.await {
                    Ok(result) => result.map_err(anyhow::Error::from),
                    Err(_) => Err(anyhow::anyhow!("a serving thread stopped unexpectedly")),
                };
                if result.is_err() {
                    stopping.cancel();
                }
                result
            }
        });
        futures::future::join_all(waits)
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()
            .map(drop)
    }

    /// Lets the threads' runtimes end, and waits for them.
    async fn release(self) {
        self.released.cancel();
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
