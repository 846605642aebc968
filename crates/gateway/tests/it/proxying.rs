//! Streams through the gateway: SSE events arrive as the service sends them, and WebSockets
//! carry text, binary and close both ways (with an API key moved from the query to the header).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::support::*;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(
    socket: &mut Socket,
) -> Result<
    Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    tokio::time::error::Elapsed,
> {
    tokio::time::timeout(Duration::from_secs(5), socket.next()).await
}

#[tokio::test]
async fn sse_events_arrive_before_the_service_finishes() {
    let inference = Fake::start("inference").await;
    let gw = start_gateway(&config(&[("inference", vec![inference.url()])])).await;
    let response = client()
        .post(gw.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer cfk_{}", Uuid::now_v7()))
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    // The service holds the rest of its answer until released: the first event must come now.
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first event arrived while the service was still answering")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    inference.state.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .unwrap()
    {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"data: second\n\ndata: [DONE]\n\n");
}

#[tokio::test]
async fn websockets_carry_text_binary_and_close_both_ways() {
    let chat = Fake::start("chat").await;
    let gw = start_gateway(&config(&[("chat", vec![chat.url()])])).await;
    let user = Uuid::now_v7();
    let url = format!("ws://{}/api/v1/ws?access_token=cfk_{user}&since=5", gw.addr);
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 101);
    let hello = next(&mut socket).await.unwrap().unwrap().unwrap();
    let hello: serde_json::Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    let auth = hello["authorization"].as_str().unwrap();
    assert_eq!(
        auth,
        format!("Bearer cfk_{user}"),
        "a socket keeps the key itself, moved to the header: {hello}"
    );
    assert_eq!(hello["query"], "since=5", "the key left the query");

    socket.send(Message::text("ping")).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap().unwrap(),
        Message::text("ping")
    );
    let blob = vec![0_u8, 1, 2, 255];
    socket.send(Message::binary(blob.clone())).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap().unwrap(),
        Message::binary(blob)
    );
    // A large message crosses whole (the pump keeps up, with back-pressure, both ways).
    let large = "x".repeat(1 << 20);
    socket.send(Message::text(large.clone())).await.unwrap();
    let echoed = next(&mut socket).await.unwrap().unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().len(), large.len());
    // The service closes; the client sees the close.
    socket.send(Message::text("close")).await.unwrap();
    let closing = next(&mut socket).await.unwrap().unwrap().unwrap();
    assert!(matches!(closing, Message::Close(_)), "{closing:?}");

    // A WebSocket without a credential is refused at the edge.
    let anonymous = format!("ws://{}/api/v1/ws", gw.addr);
    assert!(tokio_tungstenite::connect_async(anonymous).await.is_err());
    assert_eq!(chat.hits(), 1);
}
