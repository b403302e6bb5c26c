#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
mod cron;
mod error;
mod lease;
mod schedule;
mod source;
mod zone;

pub use context::{InvocationTime, ScheduleContext};
pub use error::Error;
pub use lease::{LeaseLayer, LeaseService};
pub use schedule::{Interval, Overlap, Schedule};
pub use source::{HANDLER_LOG_TARGET, LOG_TARGET, Running, ScheduleSource};
pub use zone::Zone;

/// What a user of this crate alone needs from `tomodachi-core` (all of it is [`core`]):
/// handlers, extractors, outcomes, the source contract and the shutdown.
pub use tomodachi_core::{
    self as core, Attributes, BoxError, Data, Extension, Handler, HandlerWithoutStateExt, Message,
    MessageUuid, Metadata, Outcome, Raw, ServiceIdentity, Shutdown, Source, State,
};
static STATS: tomodachi_core::stats::TaskStats = tomodachi_core::stats::TaskStats::new();

/// The transport of scheduled functions (`scheduled_functions` in the execution context, with its task counters).
pub static TRANSPORT: tomodachi_core::Transport =
    tomodachi_core::Transport::new("scheduled_functions", &STATS);
