//! Server-sent events written in frames of whatever is ready together: `data:` events that a
//! producer has ready at once (a model answering from a cache or a script, a burst of tokens)
//! go out as one body frame, and a comment line keeps an idle stream open.
//!
//! axum's `Sse` makes each event a frame of its own. A server writes ready frames together
//! anyway, but a proxy in front (the gateway) receives the body from its client connection one
//! frame at a time and writes each to its client with a system call and a TCP segment of its
//! own: a streamed answer of twenty events cost it twenty writes where one did.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::header;

/// Events joined into one frame at most.
const READY_AT_ONCE: usize = 64;

/// A response streaming `events` (each the data of one `data:` event) as `text/event-stream`:
/// the events ready together in one frame, and `: ping` after `keep_alive` without any.
pub fn response<S>(events: S, keep_alive: Duration) -> Response
where
    S: Stream<Item = String> + Send + 'static,
{
    let frames = futures::stream::unfold(
        Box::pin(events.ready_chunks(READY_AT_ONCE)),
        move |mut events| async move {
            let frame = tokio::select! {
                batch = events.next() => frame(&batch?),
                () = tokio::time::sleep(keep_alive) => Bytes::from_static(b": ping\n\n"),
            };
            Some((Ok::<_, std::convert::Infallible>(frame), events))
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

/// The events as SSE: each line of an event's data a `data:` line, a blank line after each.
fn frame(events: &[String]) -> Bytes {
    let size = events.iter().map(|e| e.len() + 8).sum();
    let mut out = BytesMut::with_capacity(size);
    for event in events {
        for line in event.split('\n') {
            out.put_slice(b"data: ");
            out.put_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
            out.put_u8(b'\n');
        }
        out.put_u8(b'\n');
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn events_are_data_lines_with_a_blank_line_after_each() {
        let frame = frame(&[
            "{\"a\":1}".into(),
            "two\nlines\r\nhere".into(),
            String::new(),
        ]);
        assert_eq!(
            frame,
            "data: {\"a\":1}\n\ndata: two\ndata: lines\ndata: here\n\ndata: \n\n"
        );
    }

    #[tokio::test]
    async fn ready_events_share_a_frame_and_later_ones_come_in_their_own() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for i in 0..3 {
            tx.send(format!("e{i}")).unwrap();
        }
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        let response = response(events, Duration::from_secs(60));
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "data: e0\n\ndata: e1\n\ndata: e2\n\n");
        tx.send("e3".into()).unwrap();
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second, "data: e3\n\n");
        drop(tx);
        assert!(
            body.frame().await.is_none(),
            "the body ends with the events"
        );
    }

    #[tokio::test]
    async fn an_idle_stream_is_kept_open_with_a_comment() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        let mut body = response(events, Duration::from_millis(20)).into_body();
        let ping = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(ping, ": ping\n\n");
        tx.send("e".into()).unwrap();
        let event = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(event, "data: e\n\n");
    }
}
