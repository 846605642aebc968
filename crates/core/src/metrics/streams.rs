//! `confab_sse_streams_active`: a middleware that counts responses streamed as server-sent
//! events (`text/event-stream`) until their body ends or the client goes away — chat's answers,
//! the OpenAI-compatible streams, the job feeds, and the gateway's relays of them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;
use prometheus_client::metrics::gauge::Gauge;

use super::Metrics;

/// Counts one open stream until dropped.
#[derive(Debug)]
struct Open(Gauge);

impl Open {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A streamed body that holds its [`Open`] count.
struct Counted {
    inner: Body,
    _open: Open,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// The middleware (`axum::middleware::from_fn_with_state(metrics, track_streams)`).
pub async fn track_streams(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if !is_event_stream(&response) {
        return response;
    }
    let open = Open::new(&metrics.sse_streams);
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(Counted {
            inner: body,
            _open: open,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsBuilder;
    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn an_event_stream_counts_until_its_body_is_gone() {
        let metrics = MetricsBuilder::new().finish();
        let app = Router::new()
            .route(
                "/sse",
                get(|| async {
                    (
                        [(http::header::CONTENT_TYPE, "text/event-stream")],
                        "data: x\n\n",
                    )
                }),
            )
            .route("/json", get(|| async { "{}" }))
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                track_streams,
            ));
        let plain = app
            .clone()
            .oneshot(Request::get("/json").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(metrics.sse_streams.get(), 0);
        drop(plain);
        let sse = app
            .oneshot(Request::get("/sse").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(metrics.sse_streams.get(), 1);
        assert!(metrics.render().contains("confab_sse_streams_active 1"));
        let body = sse.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"data: x\n\n");
        assert_eq!(metrics.sse_streams.get(), 0);
    }
}
