#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate's pages link items of every feature; with some features off those links have
// nothing to resolve to. docs.rs and CI document all features, where every link is checked.
#![cfg_attr(
    not(all(feature = "ws", feature = "fs", feature = "regex-lite")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod access_log;
mod client_max_size;
mod error_handler;
mod guard;
mod options;
mod real_ip;
mod regex_route;
mod response;
mod router;
mod server;
pub mod ws;

#[doc = include_str!("docs/middleware.md")]
pub mod middleware {}

pub use access_log::{
    AccessField, AccessLogFile, AccessLogFuture, AccessLogLayer, AccessLogService, AccessLogWriter,
    AccessRecord, IgnoreLoggingFuture, IgnoreLoggingLayer, IgnoreLoggingService,
};
pub use client_max_size::{ClientMaxSize, ClientMaxSizeFuture, ClientMaxSizeLayer};
pub use error_handler::ErrorStatus;
pub use options::{AccessLog, ByteSize, HttpOptions, OptionError};
pub use real_ip::{Cidr, RealIp, RealIpLayer, RealIpService};
pub use regex_route::Groups;
#[cfg(any(feature = "regex", feature = "regex-lite"))]
pub use regex_route::PatternError;
pub use response::{HttpError, HttpResponse};
pub use router::HttpRouter;
pub use server::{BoundHttpServer, Error, HttpServer};

/// axum, re-exported so handlers and routes use the same version.
pub use axum;

/// What a user of this crate alone needs from `tomodachi-core` (all of it is [`core`]):
/// the extractors HTTP handlers share with message handlers, the source contract and the
/// shutdown.
pub use tomodachi_core::{self as core, Extension, FromRef, Shutdown, Source, State};
static STATS: tomodachi_core::stats::TaskStats = tomodachi_core::stats::TaskStats::new();

/// The HTTP and WebSocket transport (`http` in the execution context, with its task counters).
pub static TRANSPORT: tomodachi_core::Transport = tomodachi_core::Transport::new("http", &STATS);
