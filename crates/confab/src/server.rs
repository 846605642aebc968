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

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Process;

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
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        trigger.cancel();
    };
    let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match &app.tls {
        None => {
            tracing::info!(addr = %addr, "listening");
            // Small writes (SSE chunks, short JSON answers) must not wait for Nagle's algorithm.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            Box::pin(
                axum::serve(
                    listener,
                    app.router
                        .clone()
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(graceful)
                .into_future(),
            )
        }
        Some(tls) => {
            tracing::info!(addr = %addr, tls = true, "listening");
            tls.watch(&app.tasks, app.shutdown.clone());
            // The TLS listener sets TCP_NODELAY itself; the empty tap is what lets axum hand
            // the peer's address to `ConnectInfo` for a listener other than its own.
            Box::pin(
                axum::serve(
                    tls.listener(listener).tap_io(|_| {}),
                    app.router
                        .clone()
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(graceful)
                .into_future(),
            )
        }
    };
    let deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(timeout_secs = shutdown_timeout.as_secs(), "in-flight requests cut off at the shutdown deadline"),
    }
    app.shutdown.cancel();
    app.tasks.close();
    if tokio::time::timeout(shutdown_timeout, app.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish before the deadline");
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
