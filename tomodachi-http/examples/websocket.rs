//! WebSocket echo and broadcast: every text frame is echoed to its sender and broadcast to
//! every other connected socket.
//!
//! `cargo run -p tomodachi-http --example websocket`, then connect two clients to
//! `ws://localhost:9700/ws` (for example with `websocat`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use tomodachi_core::Shutdown;
use tomodachi_http::ws::{WebSocketSession, WebSocketUpgrade, WsSender};
use tomodachi_http::{HttpOptions, HttpRouter, HttpServer};

/// Every open socket, by id.
#[derive(Clone, Default)]
struct Room {
    sockets: Arc<Mutex<HashMap<String, WsSender>>>,
}

struct Member {
    sender: WsSender,
    room: Room,
}

impl WebSocketSession for Member {
    async fn on_receive(&mut self, text: String) {
        let _ = self.sender.send_text(format!("echo: {text}"));
        let others: Vec<WsSender> = match self.room.sockets.lock() {
            Ok(sockets) => sockets
                .values()
                .filter(|other| other.id() != self.sender.id())
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        };
        for other in others {
            let _ = other.send_text(format!("{}: {text}", self.sender.id()));
        }
    }

    async fn on_close(&mut self) {
        if let Ok(mut sockets) = self.room.sockets.lock() {
            sockets.remove(self.sender.id());
        }
    }
}

async fn join(State(room): State<Room>, ws: WebSocketUpgrade) -> Response {
    ws.on_session(move |sender| {
        if let Ok(mut sockets) = room.sockets.lock() {
            sockets.insert(sender.id().to_owned(), sender.clone());
        }
        Member { sender, room }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(true).init();
    let router = HttpRouter::new()
        .regex_route("/ws", get(join))
        .with_state(Room::default());
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    HttpServer::new(HttpOptions::default())
        .serve(router, shutdown)
        .await?;
    Ok(())
}
