//! The floor under any gateway built on Confab's HTTP stack: an axum server that forwards
//! `POST /v1/chat/completions` bodies unchanged to an upstream with reqwest (pooled
//! keep-alive connections) and relays the answer, streamed or not, without reading it. No
//! authentication, limits, accounting, metrics or JSON. The gateway benchmark measures it
//! beside Confab, so the table shows how much of the cost is the stack and how much is
//! Confab's own work.
//!
//! Usage: `passthrough --listen 127.0.0.1:9200 --upstream http://127.0.0.1:9100/v1/chat/completions`

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use clap::Parser;
use http::{StatusCode, header};

#[derive(Debug, Parser)]
#[command(about = "A bare axum + reqwest forwarder (benchmarks only)")]
struct Args {
    /// Address to bind; keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: SocketAddr,
    /// The upstream chat completions URL.
    #[arg(long)]
    upstream: reqwest::Url,
}

#[derive(Clone)]
struct Forward {
    client: reqwest::Client,
    upstream: reqwest::Url,
}

async fn forward(State(state): State<Forward>, body: Bytes) -> Response {
    let sent = state
        .client
        .post(state.upstream.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(kind) = answer.headers().get(header::CONTENT_TYPE) {
                response = response.header(header::CONTENT_TYPE, kind);
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|_| bad_gateway())
        }
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .context("HTTP client")?;
        let app = Router::new()
            .route("/v1/chat/completions", post(forward))
            .with_state(Forward {
                client,
                upstream: args.upstream,
            });
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("bind {}", args.listen))?;
        let listener = listener.tap_io(|tcp| {
            // Without it every streamed answer waits on Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app.into_make_service())
            .await
            .context("serve")
    })
}
