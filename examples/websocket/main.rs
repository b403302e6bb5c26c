//! WebSockets: an echo socket written as a plain receive/send loop, and a chat room in
//! tomodachi's receive/close style where every text frame is broadcast to the others.
//!
//! ```text
//! cargo run -p tomodachi-examples --example websocket --features websocket
//! websocat ws://localhost:9700/echo        # each text frame comes back as is
//! websocat ws://localhost:9700/chat        # in two terminals: frames go to the other
//! curl -i localhost:9700/chat              # a plain GET is refused (400)
//! ```
//!
//! Without `websocat`, any WebSocket client works (a browser console:
//! `s = new WebSocket("ws://localhost:9700/chat"); s.onmessage = e => console.log(e.data); s.send("baa")`).
//! The log shows `websocket_state` open/closed records with each socket's id. On Ctrl-C or
//! SIGTERM every open socket gets a Close frame (1001) before the process exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tomodachi::http::axum::response::Response;
use tomodachi::http::ws::{Message, WebSocket, WebSocketSession, WebSocketUpgrade, WsSender};
use tomodachi::prelude::*;

/// The service's state: the sockets in the chat room, by id.
#[derive(Clone, Default)]
struct Room {
    members: Arc<Mutex<HashMap<String, WsSender>>>,
}

impl Room {
    fn join(&self, member: WsSender) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.insert(member.id().to_owned(), member);
    }

    fn leave(&self, id: &str) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.remove(id);
    }

    /// Everyone but `from`.
    fn others(&self, from: &str) -> Vec<WsSender> {
        let members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members
            .values()
            .filter(|member| member.id() != from)
            .cloned()
            .collect()
    }
}

/// `GET /echo`: the socket as a stream of messages. Text and binary frames come back;
/// pings are answered by the library; `recv` ends on Close or at shutdown.
async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let reply = match message {
                Message::Text(_) | Message::Binary(_) => message,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

/// One chat member: tomodachi's `(receive, close)` callbacks as a [`WebSocketSession`].
struct Member {
    me: WsSender,
    room: Room,
}

impl WebSocketSession for Member {
    async fn on_receive(&mut self, text: String) {
        let short_id = &self.me.id()[..8];
        for other in self.room.others(self.me.id()) {
            // A member that left in the meantime is skipped.
            let _ = other.send_text(format!("{short_id}: {text}"));
        }
    }

    async fn on_close(&mut self) {
        self.room.leave(self.me.id());
    }
}

/// `GET /chat`: joins the room.
async fn chat(State(room): State<Room>, ws: WebSocketUpgrade) -> Response {
    ws.on_session(move |me| {
        let _ = me.send_text(format!("welcome, you are {}", &me.id()[..8]));
        room.join(me.clone());
        Member { me, room }
    })
}

#[tokio::main]
async fn main() -> Exit {
    let router = HttpRouter::new()
        .route("/echo", get(echo))
        .route("/chat", get(chat));
    tomodachi::Service::new("websocket-example")
        .state(Room::default())
        .http(router)
        .run()
        .await
}
