//! WebSockets with a real client: echo, frames, close codes, log records, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use support::{Capture, TestServer, WAIT, options};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as ClientMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as ClientCloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tomodachi_http::HttpRouter;
use tomodachi_http::ws::{WebSocketSession, WebSocketUpgrade, WsSender};

/// Echoes text, counts binary frames, reports its close.
struct Echo {
    sender: WsSender,
    events: mpsc::UnboundedSender<String>,
}

impl WebSocketSession for Echo {
    async fn on_receive(&mut self, text: String) {
        let _ = self.sender.send_text(text);
    }

    async fn on_binary(&mut self, data: Bytes) {
        let _ = self.events.send(format!("binary {}", data.len()));
    }

    async fn on_close(&mut self) {
        let _ = self.events.send("closed".to_owned());
    }
}

fn echo_router(events: mpsc::UnboundedSender<String>) -> HttpRouter {
    let events = Arc::new(events);
    HttpRouter::new().regex_route(
        "/ws",
        get(move |ws: WebSocketUpgrade| {
            let events = (*events).clone();
            async move { ws.on_session(move |sender| Echo { sender, events }) }
        }),
    )
}

async fn next_text(
    client: &mut (
             impl StreamExt<Item = Result<ClientMessage, tokio_tungstenite::tungstenite::Error>> + Unpin
         ),
) -> ClientMessage {
    tokio::time::timeout(WAIT, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn echo_binary_ping_and_client_close_with_log_records() {
    let (capture, _guard) = Capture::start();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let server = TestServer::start(echo_router(events_tx), options()).await;
    let url = format!("ws://{}/ws?room=1", server.addr);
    let (mut client, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.headers()["server"], "tomodachi");

    client.send(ClientMessage::text("hello")).await.unwrap();
    assert_eq!(next_text(&mut client).await, ClientMessage::text("hello"));

    client
        .send(ClientMessage::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(events.recv().await.unwrap(), "binary 3");

    client
        .send(ClientMessage::Ping(Bytes::from_static(b"p")))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut client).await,
        ClientMessage::Pong(Bytes::from_static(b"p"))
    );

    client
        .send(ClientMessage::Close(Some(ClientCloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    match next_text(&mut client).await {
        ClientMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert_eq!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap(),
        "closed"
    );

    let open = capture
        .wait_for(|r| r.field("websocket_state") == Some("open"))
        .await;
    assert_eq!(open.target, "tomodachi.http.websocket");
    assert_eq!(open.field("request_path"), Some("/ws"));
    assert_eq!(open.field("request_query_string"), Some("room=1"));
    assert_eq!(open.field("remote_ip"), Some("127.0.0.1"));
    let id = open.field("websocket_id").unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let closed = capture
        .wait_for(|r| r.field("websocket_state") == Some("closed"))
        .await;
    assert_eq!(closed.target, "tomodachi.http.response");
    assert_eq!(closed.field("websocket_id"), Some(id.as_str()));
    assert!(closed.field("total_request_time").unwrap().ends_with('s'));
    // The upgrade itself is not an access log record of its own.
    assert!(
        !capture
            .with_target("tomodachi.http.response")
            .iter()
            .any(|r| r.field("status_code") == Some("101"))
    );
    server.stop().await;
}

#[tokio::test]
async fn frames_larger_than_the_starting_read_buffer_arrive_whole() {
    // The socket's read buffer starts at 4 KiB and grows: a 1 MiB text frame and a 300 KiB
    // binary frame arrive intact.
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let server = TestServer::start(echo_router(events_tx), options()).await;
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    let text: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    client
        .send(ClientMessage::text(text.clone()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, ClientMessage::text(text));
    client
        .send(ClientMessage::binary(vec![7u8; 300 * 1024]))
        .await
        .unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        format!("binary {}", 300 * 1024)
    );
}

#[tokio::test]
async fn shutdown_sends_going_away_and_waits_for_the_socket() {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let server = TestServer::start(echo_router(events_tx), options()).await;
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    client.send(ClientMessage::text("up")).await.unwrap();
    assert_eq!(next_text(&mut client).await, ClientMessage::text("up"));

    server.shutdown.trigger();
    match next_text(&mut client).await {
        ClientMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    // The client answers the Close while reading on; the drain ends with the socket.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, client.next()).await {}
    assert_eq!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap(),
        "closed"
    );
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn on_upgrade_gives_the_raw_socket() {
    let router = HttpRouter::new().route(
        "/raw",
        get(|ws: WebSocketUpgrade| async move {
            let id = ws.id().to_owned();
            let response: Response = ws.on_upgrade(move |mut socket| async move {
                assert_eq!(socket.id(), id);
                while let Some(Ok(message)) = socket.recv().await {
                    if let tomodachi_http::ws::Message::Binary(data) = message {
                        let reversed: Vec<u8> = data.iter().rev().copied().collect();
                        if socket
                            .send(tomodachi_http::ws::Message::Binary(reversed.into()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            });
            response
        }),
    );
    let server = TestServer::start(router, options()).await;
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{}/raw", server.addr))
        .await
        .unwrap();
    client
        .send(ClientMessage::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut client).await,
        ClientMessage::binary(vec![3u8, 2, 1])
    );
    client.close(None).await.unwrap();
    server.stop().await;
}
