//! Serving with graceful shutdown: on SIGINT/SIGTERM stop accepting, let in-flight requests
//! finish (bounded by `server.shutdown_timeout_secs`), wait for tracked tasks, close the pool.

use std::future::Future;
use std::net::SocketAddr;
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
    tracing::info!(addr = %addr, "listening");
    let stopping = CancellationToken::new();
    let trigger = stopping.clone();
    // Small writes (SSE chunks, short JSON answers) must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(
        listener,
        app.router
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        trigger.cancel();
    });
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
