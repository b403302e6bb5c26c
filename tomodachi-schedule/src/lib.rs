#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod context;
mod cron;
mod error;
mod lease;
mod schedule;
mod source;
mod zone;

pub use context::{InvocationTime, ScheduleContext};
pub use error::ScheduleError;
pub use lease::{LeaseLayer, LeaseService};
pub use schedule::{Interval, Overlap, Schedule};
pub use source::{HANDLER_LOG_TARGET, LOG_TARGET, Running, ScheduleSource};
pub use zone::Zone;

static STATS: tomodachi_core::stats::TaskStats = tomodachi_core::stats::TaskStats::new();

/// The transport of scheduled functions (`scheduled_functions` in the execution context, with its task counters).
pub static TRANSPORT: tomodachi_core::Transport =
    tomodachi_core::Transport::new("scheduled_functions", &STATS);
