/// A schedule that cannot run: returned by [`Schedule::validate`](crate::Schedule::validate)
/// and by the source's start, so an invalid configuration fails startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The interval is neither a number of seconds, one of tomodachi's interval words, a cron
    /// expression nor a duration.
    #[error("Invalid interval: {interval:?}: {reason}")]
    InvalidInterval {
        /// The interval as given.
        interval: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The timestamp is not `HH:MM`, `HH:MM:SS`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`.
    #[error(
        "Invalid timestamp: {timestamp:?} (expected HH:MM, HH:MM:SS, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS)"
    )]
    InvalidTimestamp {
        /// The timestamp as given.
        timestamp: String,
    },
    /// The time zone is neither an IANA name nor an offset like `+02:00`.
    #[error("Unknown timezone: {timezone}")]
    UnknownTimezone {
        /// The time zone as given.
        timezone: String,
    },
    /// A zone name other than UTC's, without the `tz` feature (no tz database).
    #[error("Unknown timezone: {timezone} (time zone names need the `tz` feature)")]
    TimezoneNeedsTz {
        /// The time zone as given.
        timezone: String,
    },
    /// The handler service failed its `poll_ready` and can take no more work (the schedule
    /// stops, as every source does; see `tomodachi_core::driver`).
    #[error("the handler service failed: {0}")]
    Service(String),
}
