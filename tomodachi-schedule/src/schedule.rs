//! The pure [`Schedule`] value: what to run when, with no runtime attached.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Timelike, Utc};

use crate::Error;
use crate::cron::Cron;
use crate::zone::{Instants, Zone};

/// When a scheduled handler runs, in which time zone, and what happens when a tick comes due
/// while the previous run is still going.
///
/// A schedule is built from one of the constructors and refined with [`timezone`],
/// [`immediately`] and [`overlap`]. Constructors never fail: a bad interval, timestamp or time
/// zone is kept and reported by [`validate`] (and by the source at startup, which fails the
/// service, as tomodachi does). Use [`Schedule::parse`] to get the error up front.
///
/// [`timezone`]: Schedule::timezone
/// [`immediately`]: Schedule::immediately
/// [`overlap`]: Schedule::overlap
/// [`validate`]: Schedule::validate
#[derive(Clone)]
pub struct Schedule {
    spec: Result<Spec, Error>,
    zone: Result<Zone, Error>,
    immediately: bool,
    overlap: Overlap,
    interval: Interval,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Spec {
    /// Every n seconds, counted from the previous due time.
    Every(u64),
    /// A cron expression in the schedule's zone.
    Cron(Box<Cron>),
    /// Every day at this local time.
    Daily(NaiveTime),
    /// Once, at this local date and time.
    Once(NaiveDateTime),
}

/// What to do when a tick comes due while earlier runs are still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// Skip the tick (logged with a warning) while the previous run is still going.
    #[default]
    Skip,
    /// Start runs concurrently, at most this many at once (a value of 0 counts as 1); a tick
    /// beyond that is skipped with tomodachi's "too many scheduled tasks" warning.
    Allow(usize),
    /// Never overlap: a tick that comes due during a run starts as soon as that run ends.
    /// At most one tick waits; ticks that pass in the meantime are skipped.
    Queue,
}

/// The interval a schedule was configured with, as given: what tomodachi passes to a handler's
/// `interval` keyword. It is also a handler extractor (see [`crate::ScheduleContext`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Interval {
    /// A whole number of seconds ([`Schedule::interval`], [`Schedule::heartbeat`]).
    Seconds(u64),
    /// A string: an interval word, `"10s"`, a cron expression or a duration.
    Text(Arc<str>),
    /// The schedule runs at a timestamp (tomodachi passes `None` as the interval then).
    Timestamp(Arc<str>),
}

impl Interval {
    /// The period of an interval schedule in whole seconds (`Seconds(n)`, `"10s"`,
    /// `"5 minutes"`-style durations); `None` for cron expressions, interval words that are
    /// crontabs (`"minutely"`, `"daily"`, ...) and timestamps, whose due times are already
    /// the same on every replica.
    pub fn period(&self) -> Option<u64> {
        match self {
            Interval::Seconds(seconds) => Some(*seconds),
            Interval::Text(text) => match parse_interval(text) {
                Ok(Spec::Every(seconds)) => Some(seconds),
                _ => None,
            },
            Interval::Timestamp(_) => None,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interval::Seconds(seconds) => write!(f, "{seconds}"),
            Interval::Text(text) | Interval::Timestamp(text) => f.write_str(text),
        }
    }
}

/// tomodachi's interval words: 1 second, or a crontab.
const ALIASES: &[(&[&str], Option<&str>)] = &[
    (
        &[
            "every second",
            "1s",
            "1 s",
            "1second",
            "1 second",
            "second",
            "secondly",
            "once per second",
        ],
        None,
    ),
    (
        &[
            "every minute",
            "1m",
            "1 m",
            "1minute",
            "1 minute",
            "minute",
            "minutely",
            "once per minute",
        ],
        Some("* * * * *"),
    ),
    (
        &[
            "every hour",
            "1h",
            "1 h",
            "1hour",
            "1 hour",
            "hour",
            "hourly",
            "once per hour",
        ],
        Some("0 * * * *"),
    ),
    (
        &[
            "every day",
            "1d",
            "1 d",
            "1day",
            "1 day",
            "day",
            "daily",
            "once per day",
            "nightly",
        ],
        Some("0 0 * * *"),
    ),
    (
        &[
            "every month",
            "1month",
            "1 month",
            "month",
            "monthly",
            "once per month",
        ],
        Some("0 0 1 * *"),
    ),
    (
        &[
            "every year",
            "1y",
            "1 y",
            "1year",
            "1 year",
            "year",
            "yearly",
            "once per year",
            "annually",
        ],
        Some("0 0 1 1 *"),
    ),
    (
        &[
            "monday",
            "mondays",
            "mon",
            "every monday",
            "once per monday",
            "weekly",
            "once per week",
            "week",
            "every week",
        ],
        Some("0 0 * * 1"),
    ),
    (
        &[
            "tuesday",
            "tuesdays",
            "tue",
            "every tuesday",
            "once per tuesday",
        ],
        Some("0 0 * * 2"),
    ),
    (
        &[
            "wednesday",
            "wednesdays",
            "wed",
            "every wednesday",
            "once per wednesday",
        ],
        Some("0 0 * * 3"),
    ),
    (
        &[
            "thursday",
            "thursdays",
            "thu",
            "every thursday",
            "once per thursday",
        ],
        Some("0 0 * * 4"),
    ),
    (
        &[
            "friday",
            "fridays",
            "fri",
            "every friday",
            "once per friday",
        ],
        Some("0 0 * * 5"),
    ),
    (
        &[
            "saturday",
            "saturdays",
            "sat",
            "every saturday",
            "once per saturday",
        ],
        Some("0 0 * * 6"),
    ),
    (
        &[
            "sunday",
            "sundays",
            "sun",
            "every sunday",
            "once per sunday",
        ],
        Some("0 0 * * 0"),
    ),
    (
        &["weekday", "weekdays", "every weekday"],
        Some("0 0 * * 1-5"),
    ),
    (
        &["weekend", "weekends", "every weekend"],
        Some("0 0 * * 0,6"),
    ),
];

impl Schedule {
    fn new(spec: Result<Spec, Error>, interval: Interval) -> Schedule {
        Schedule {
            spec,
            zone: Ok(Zone::Local),
            immediately: false,
            overlap: Overlap::Skip,
            interval,
        }
    }

    /// Every `seconds` seconds (tomodachi's integer `interval`); the first run is `seconds`
    /// after start unless [`immediately`](Schedule::immediately) is set. Zero is invalid.
    pub fn interval(seconds: u64) -> Schedule {
        let spec = if seconds == 0 {
            Err(Error::InvalidInterval {
                interval: "0".to_owned(),
                reason: "an interval must be at least 1 second".to_owned(),
            })
        } else {
            Ok(Spec::Every(seconds))
        };
        Schedule::new(spec, Interval::Seconds(seconds))
    }

    /// An interval string as tomodachi reads it, plus durations.
    ///
    /// In order: `"10s"`/`"10 seconds"`/`"30 s"` are seconds; tomodachi's words (`"minutely"`,
    /// `"1m"`, `"every hour"`, `"daily"`, `"nightly"`, `"weekly"` = Monday, `"weekdays"`, ... ) keep
    /// tomodachi's meaning; then a cron expression (so a bare `"10"` is minute 10 of every
    /// hour); then a [humantime](https://docs.rs/humantime) duration (`"5m"`, `"2h 30m"`,
    /// `"90 min"`), counted from start like a number of seconds. Words and cron are
    /// case-insensitive; durations are read as written (`"2M"` would be months, but `"1M"` is
    /// tomodachi's word for every minute).
    pub fn every(interval: impl AsRef<str>) -> Schedule {
        let text = interval.as_ref();
        Schedule::new(
            parse_interval(text),
            Interval::Text(Arc::from(text.to_owned())),
        )
    }

    /// [`Schedule::every`], with the error up front.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInterval`] if `interval` is none of the accepted forms.
    pub fn parse(interval: &str) -> Result<Schedule, Error> {
        let schedule = Schedule::every(interval);
        schedule.validate()?;
        Ok(schedule)
    }

    /// A cron expression: `minute hour day month weekday [year]` (no seconds field), or a macro
    /// (`@yearly`, `@annually`, `@monthly`, `@weekly` = Sunday, `@daily`, `@hourly`, `@minutely`).
    ///
    /// Lists, ranges, steps, month and weekday names (`jan`, `mon`), `?`, `L` (last day of the
    /// month) and `L<weekday>` (last such weekday of the month) are understood; years run from
    /// 1970 to 2099. When both the day and the weekday field are restricted, either matching is
    /// enough. Steps follow tomodachi: `x/n` keeps the values congruent to `x` modulo `n`, so
    /// `*/2` in the day field means even days.
    pub fn cron(expression: impl AsRef<str>) -> Schedule {
        let text = expression.as_ref();
        let spec = Cron::parse(text)
            .map(|cron| Spec::Cron(Box::new(cron)))
            .map_err(|reason| Error::InvalidInterval {
                interval: text.to_owned(),
                reason: format!("invalid cron notation: {reason}"),
            });
        Schedule::new(spec, Interval::Text(Arc::from(text.to_owned())))
    }

    /// At a local time: `"HH:MM"` or `"HH:MM:SS"` every day, or `"YYYY-MM-DD HH:MM[:SS]"` once
    /// (never, if that time has passed).
    pub fn timestamp(timestamp: impl AsRef<str>) -> Schedule {
        let text = timestamp.as_ref();
        Schedule::new(
            parse_timestamp(text),
            Interval::Timestamp(Arc::from(text.to_owned())),
        )
    }

    /// Every second (tomodachi's `@heartbeat`).
    pub fn heartbeat() -> Schedule {
        Schedule::interval(1)
    }

    /// Every second (tomodachi's `@every_second`), the same as [`Schedule::heartbeat`].
    pub fn every_second() -> Schedule {
        Schedule::interval(1)
    }

    /// At the start of every minute (tomodachi's `@minutely`).
    pub fn minutely() -> Schedule {
        Schedule::every("minutely")
    }

    /// At the start of every hour (tomodachi's `@hourly`).
    pub fn hourly() -> Schedule {
        Schedule::every("hourly")
    }

    /// Every day at midnight (tomodachi's `@daily`).
    pub fn daily() -> Schedule {
        Schedule::every("daily")
    }

    /// On the first of every month at midnight (tomodachi's `@monthly`).
    pub fn monthly() -> Schedule {
        Schedule::every("monthly")
    }

    /// Reads cron expressions and timestamps in this time zone: an IANA name
    /// (`"Europe/Stockholm"`, with the `tz` feature; `"UTC"` always) or an offset
    /// (`"+02:00"`, `"GMT -5"`); see [`Zone`]. Without
    /// it, the system's local zone is used, as in tomodachi. Irrelevant to intervals counted
    /// in seconds.
    pub fn timezone(mut self, timezone: impl AsRef<str>) -> Schedule {
        self.zone = Zone::parse(timezone.as_ref());
        self
    }

    /// Reads cron expressions and timestamps in this (already parsed) zone.
    pub fn zone(mut self, zone: Zone) -> Schedule {
        self.zone = Ok(zone);
        self
    }

    /// Also runs once as soon as the source starts.
    pub fn immediately(mut self) -> Schedule {
        self.immediately = true;
        self
    }

    /// Sets the overlap policy (default [`Overlap::Skip`]).
    pub fn overlap(mut self, overlap: Overlap) -> Schedule {
        self.overlap = overlap;
        self
    }

    /// Whether the schedule also runs once at start.
    pub fn runs_immediately(&self) -> bool {
        self.immediately
    }

    /// The overlap policy.
    pub fn overlap_policy(&self) -> Overlap {
        self.overlap
    }

    /// The interval as configured.
    pub fn interval_value(&self) -> &Interval {
        &self.interval
    }

    /// The time zone, if it is valid.
    pub fn time_zone(&self) -> Option<Zone> {
        self.zone.as_ref().ok().copied()
    }

    /// Checks the interval or timestamp and the time zone.
    ///
    /// # Errors
    ///
    /// The first problem found: [`Error::InvalidInterval`],
    /// [`Error::InvalidTimestamp`] or [`Error::UnknownTimezone`].
    pub fn validate(&self) -> Result<(), Error> {
        self.spec.as_ref().map_err(Clone::clone)?;
        self.zone.as_ref().map_err(Clone::clone)?;
        Ok(())
    }

    /// The first due time strictly after `after`, always on a whole second; `None` when the
    /// schedule never runs again (a past timestamp, a cron expression with no match before
    /// 2100) or is invalid (see [`validate`](Schedule::validate)).
    ///
    /// Intervals in seconds count from `after` (rounded down to the second). Cron expressions
    /// and timestamps are matched in the zone's local time: a local time that does not exist
    /// (spring forward) is skipped; a local time that happens twice (fall back) runs once, at
    /// the first pass, except for cron expressions whose minute or hour field starts with
    /// `*`, which keep running through the repeated hour.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let spec = self.spec.as_ref().ok()?;
        let zone = *self.zone.as_ref().ok()?;
        match spec {
            Spec::Every(seconds) => {
                let next = after
                    .timestamp()
                    .checked_add(i64::try_from(*seconds).ok()?)?;
                DateTime::from_timestamp(next, 0)
            }
            _ => next_local_match(spec, zone, after),
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("interval", &self.interval)
            .field("zone", &self.zone)
            .field("immediately", &self.immediately)
            .field("overlap", &self.overlap)
            .field("valid", &self.spec.is_ok())
            .finish()
    }
}

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(interval: &str) -> Result<Self, Self::Err> {
        Schedule::parse(interval)
    }
}

fn parse_interval(input: &str) -> Result<Spec, Error> {
    let trimmed = input.trim();
    let lower = trimmed.to_lowercase();
    let invalid = |reason: String| Error::InvalidInterval {
        interval: input.to_owned(),
        reason,
    };

    // tomodachi: "10s", "10 seconds", "30 s" are seconds.
    if lower.ends_with('s') {
        let digits = lower.replace("seconds", "").replace(['s', ' '], "");
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return match digits.parse::<u64>() {
                Ok(0) => Err(invalid("an interval must be at least 1 second".to_owned())),
                Ok(seconds) => Ok(Spec::Every(seconds)),
                Err(_) => Err(invalid("number of seconds out of range".to_owned())),
            };
        }
    }

    if let Some((_, target)) = ALIASES
        .iter()
        .find(|(words, _)| words.contains(&lower.as_str()))
    {
        return match target {
            None => Ok(Spec::Every(1)),
            Some(cron) => Cron::parse(cron)
                .map(|c| Spec::Cron(Box::new(c)))
                .map_err(invalid),
        };
    }

    let cron_error = match Cron::parse(&lower) {
        Ok(cron) => return Ok(Spec::Cron(Box::new(cron))),
        Err(e) => e,
    };

    match humantime::parse_duration(trimmed) {
        Ok(duration) if duration.subsec_nanos() != 0 => Err(invalid(
            "a duration must be a whole number of seconds".to_owned(),
        )),
        Ok(duration) if duration.as_secs() == 0 => {
            Err(invalid("an interval must be at least 1 second".to_owned()))
        }
        Ok(duration) => Ok(Spec::Every(duration.as_secs())),
        Err(duration_error) => Err(invalid(format!(
            "not a number of seconds, an interval word, a cron expression ({cron_error}) \
             or a duration ({duration_error})"
        ))),
    }
}

fn parse_timestamp(input: &str) -> Result<Spec, Error> {
    let text = input.trim();
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Spec::Once(at));
        }
    }
    for format in ["%H:%M:%S", "%H:%M"] {
        if let Ok(at) = NaiveTime::parse_from_str(text, format) {
            return Ok(Spec::Daily(at));
        }
    }
    Err(Error::InvalidTimestamp {
        timestamp: input.to_owned(),
    })
}

/// First local time at or after `from` that the spec matches.
fn next_naive(spec: &Spec, from: NaiveDateTime) -> Option<NaiveDateTime> {
    match spec {
        Spec::Every(_) => None,
        Spec::Cron(cron) => cron.next_local(from),
        Spec::Daily(time) => {
            let today = from.date().and_time(*time);
            if today >= from {
                Some(today)
            } else {
                Some(from.date().succ_opt()?.and_time(*time))
            }
        }
        Spec::Once(at) => (*at >= from).then_some(*at),
    }
}

/// Longest DST/offset change assumed when looking around a transition.
const TRANSITION_WINDOW: Duration = Duration::hours(3);

fn next_local_match(spec: &Spec, zone: Zone, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let both_passes = matches!(spec, Spec::Cron(cron) if cron.wildcard_time());
    // Near an offset change, local times slightly before `after`'s local time can still be
    // ahead in real time (the second pass of a repeated hour), so look back a little.
    let offset = zone.offset_seconds(after);
    let near_transition = zone.offset_seconds(after - TRANSITION_WINDOW) != offset
        || zone.offset_seconds(after + TRANSITION_WINDOW) != offset;
    let look = if near_transition {
        TRANSITION_WINDOW
    } else {
        Duration::zero()
    };

    let mut from = (zone.naive(after) - look).with_nanosecond(0)?;
    let mut best: Option<DateTime<Utc>> = None;
    loop {
        let Some(local) = next_naive(spec, from) else {
            return best;
        };
        if let Some(found) = best
            && local >= zone.naive(found) + look
        {
            return best;
        }
        let mut consider = |instant: DateTime<Utc>| {
            if instant > after && best.is_none_or(|b| instant < b) {
                best = Some(instant);
            }
        };
        match zone.instants(local) {
            Instants::None => {}
            Instants::One(instant) => consider(instant),
            Instants::Two(first, second) => {
                consider(first);
                if both_passes {
                    consider(second);
                }
            }
        }
        if best.is_some() && look.is_zero() {
            return best;
        }
        from = local + Duration::seconds(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid test time")
    }

    fn fmt(t: Option<DateTime<Utc>>) -> String {
        t.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    }

    /// The next `count` due times after `from`, as UTC strings.
    fn runs(schedule: &Schedule, from: DateTime<Utc>, count: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = from;
        for _ in 0..count {
            match schedule.next_after(at) {
                Some(next) => {
                    assert!(next > at, "{next} must be after {at}");
                    out.push(fmt(Some(next)));
                    at = next;
                }
                None => {
                    out.push("never".to_owned());
                    break;
                }
            }
        }
        out
    }

    /// Thursday 2017-06-15 10:16:50 UTC, tomodachi's test reference time.
    fn t0() -> DateTime<Utc> {
        utc(2017, 6, 15, 10, 16, 50)
    }

    fn next_utc(interval: &str) -> String {
        let schedule = Schedule::every(interval).timezone("UTC");
        schedule
            .validate()
            .unwrap_or_else(|e| panic!("{interval:?} should be valid: {e}"));
        fmt(schedule.next_after(t0()))
    }

    #[test]
    fn integer_interval_counts_whole_seconds() {
        let schedule = Schedule::interval(10);
        assert_eq!(fmt(schedule.next_after(t0())), "2017-06-15 10:17:00");
        let with_nanos = t0() + Duration::milliseconds(999);
        assert_eq!(fmt(schedule.next_after(with_nanos)), "2017-06-15 10:17:00");
        assert_eq!(
            runs(&Schedule::heartbeat(), t0(), 3),
            [
                "2017-06-15 10:16:51",
                "2017-06-15 10:16:52",
                "2017-06-15 10:16:53"
            ]
        );
        assert_eq!(
            Schedule::heartbeat().interval_value(),
            &Interval::Seconds(1)
        );
        assert_eq!(
            Schedule::every_second().interval_value(),
            &Interval::Seconds(1)
        );
    }

    #[test]
    fn zero_interval_is_invalid() {
        assert!(matches!(
            Schedule::interval(0).validate(),
            Err(Error::InvalidInterval { .. })
        ));
        assert_eq!(Schedule::interval(0).next_after(t0()), None);
        for zero in ["0s", "0 seconds", "0m", "0"] {
            // "0" is cron minute 0, which is valid.
            if zero == "0" {
                assert!(Schedule::every(zero).validate().is_ok());
            } else {
                assert!(Schedule::every(zero).validate().is_err(), "{zero}");
            }
        }
    }

    #[test]
    fn seconds_forms() {
        for (text, next) in [
            ("10s", "2017-06-15 10:17:00"),
            ("10 s", "2017-06-15 10:17:00"),
            ("10 seconds", "2017-06-15 10:17:00"),
            ("10 Seconds", "2017-06-15 10:17:00"),
            ("30 S", "2017-06-15 10:17:20"),
            ("3600s", "2017-06-15 11:16:50"),
        ] {
            assert_eq!(next_utc(text), next, "{text}");
        }
    }

    #[test]
    fn every_second_words() {
        for word in [
            "every second",
            "1s",
            "1 s",
            "1second",
            "1 second",
            "second",
            "secondly",
            "once per second",
            "Every Second",
        ] {
            assert_eq!(next_utc(word), "2017-06-15 10:16:51", "{word}");
        }
    }

    #[test]
    fn minute_hour_day_month_year_words() {
        let groups: [(&[&str], &str); 5] = [
            (
                &[
                    "every minute",
                    "1m",
                    "1 m",
                    "1minute",
                    "1 minute",
                    "minute",
                    "minutely",
                    "once per minute",
                    "1M",
                ],
                "2017-06-15 10:17:00",
            ),
            (
                &[
                    "every hour",
                    "1h",
                    "1 h",
                    "1hour",
                    "1 hour",
                    "hour",
                    "hourly",
                    "once per hour",
                ],
                "2017-06-15 11:00:00",
            ),
            (
                &[
                    "every day",
                    "1d",
                    "1 d",
                    "1day",
                    "1 day",
                    "day",
                    "daily",
                    "once per day",
                    "nightly",
                ],
                "2017-06-16 00:00:00",
            ),
            (
                &[
                    "every month",
                    "1month",
                    "1 month",
                    "month",
                    "monthly",
                    "once per month",
                ],
                "2017-07-01 00:00:00",
            ),
            (
                &[
                    "every year",
                    "1y",
                    "1 y",
                    "1year",
                    "1 year",
                    "year",
                    "yearly",
                    "once per year",
                    "annually",
                ],
                "2018-01-01 00:00:00",
            ),
        ];
        for (words, next) in groups {
            for word in words {
                assert_eq!(next_utc(word), next, "{word}");
            }
        }
    }

    #[test]
    fn weekday_words() {
        let groups: [(&[&str], &str); 9] = [
            (
                &[
                    "monday",
                    "mondays",
                    "mon",
                    "every monday",
                    "once per monday",
                    "weekly",
                    "once per week",
                    "week",
                    "every week",
                ],
                "2017-06-19 00:00:00",
            ),
            (
                &[
                    "tuesday",
                    "tuesdays",
                    "tue",
                    "every tuesday",
                    "once per tuesday",
                ],
                "2017-06-20 00:00:00",
            ),
            (
                &[
                    "wednesday",
                    "wednesdays",
                    "wed",
                    "every wednesday",
                    "once per wednesday",
                ],
                "2017-06-21 00:00:00",
            ),
            (
                &[
                    "thursday",
                    "thursdays",
                    "thu",
                    "every thursday",
                    "once per thursday",
                ],
                "2017-06-22 00:00:00",
            ),
            (
                &[
                    "friday",
                    "fridays",
                    "fri",
                    "every friday",
                    "once per friday",
                ],
                "2017-06-16 00:00:00",
            ),
            (
                &[
                    "saturday",
                    "saturdays",
                    "sat",
                    "every saturday",
                    "once per saturday",
                ],
                "2017-06-17 00:00:00",
            ),
            (
                &[
                    "sunday",
                    "sundays",
                    "sun",
                    "every sunday",
                    "once per sunday",
                ],
                "2017-06-18 00:00:00",
            ),
            (
                &["weekday", "weekdays", "every weekday"],
                "2017-06-16 00:00:00",
            ),
            (
                &["weekend", "weekends", "every weekend"],
                "2017-06-17 00:00:00",
            ),
        ];
        for (words, next) in groups {
            for word in words {
                assert_eq!(next_utc(word), next, "{word}");
            }
        }
        // Weekdays through a weekend: Fri, then Mon.
        let weekdays = Schedule::every("weekdays").timezone("UTC");
        assert_eq!(
            runs(&weekdays, t0(), 3),
            [
                "2017-06-16 00:00:00",
                "2017-06-19 00:00:00",
                "2017-06-20 00:00:00"
            ]
        );
    }

    #[test]
    fn traps_weekly_is_monday_but_at_weekly_is_sunday() {
        assert_eq!(next_utc("weekly"), "2017-06-19 00:00:00");
        assert_eq!(next_utc("@weekly"), "2017-06-18 00:00:00");
        assert_eq!(
            fmt(Schedule::cron("@weekly").timezone("UTC").next_after(t0())),
            "2017-06-18 00:00:00"
        );
    }

    #[test]
    fn traps_bare_number_is_cron_minute() {
        assert_eq!(next_utc("10"), "2017-06-15 11:10:00");
        assert_eq!(
            runs(&Schedule::every("10").timezone("UTC"), t0(), 2),
            ["2017-06-15 11:10:00", "2017-06-15 12:10:00"]
        );
    }

    #[test]
    fn cron_through_every_and_cron() {
        assert_eq!(next_utc("*/5 * * * *"), "2017-06-15 10:20:00");
        assert_eq!(next_utc("@hourly"), "2017-06-15 11:00:00");
        assert_eq!(next_utc("39 3 L * *"), "2017-06-30 03:39:00");
        assert_eq!(next_utc("0 0 1 1 * 2030"), "2030-01-01 00:00:00");
        let cron = Schedule::cron("*/5 * * * *").timezone("UTC");
        assert_eq!(
            runs(&cron, t0(), 3),
            [
                "2017-06-15 10:20:00",
                "2017-06-15 10:25:00",
                "2017-06-15 10:30:00"
            ]
        );
        assert_eq!(
            cron.interval_value(),
            &Interval::Text(Arc::from("*/5 * * * *"))
        );
        // `cron` is strict: no interval words.
        assert!(Schedule::cron("hourly").validate().is_err());
        assert!(Schedule::cron("5m").validate().is_err());
    }

    #[test]
    fn cron_year_field_ends_schedule() {
        let once = Schedule::cron("0 12 1 1 * 2030").timezone("UTC");
        assert_eq!(runs(&once, t0(), 2), ["2030-01-01 12:00:00", "never"]);
        let past = Schedule::cron("0 12 1 1 * 2011-2013").timezone("UTC");
        assert_eq!(past.next_after(t0()), None);
    }

    #[test]
    fn humantime_durations_fill_the_gaps() {
        for (text, next) in [
            ("5m", "2017-06-15 10:21:50"),
            ("5 m", "2017-06-15 10:21:50"),
            ("5 minutes", "2017-06-15 10:21:50"),
            ("90 min", "2017-06-15 11:46:50"),
            ("2h 30m", "2017-06-15 12:46:50"),
            ("2 hours", "2017-06-15 12:16:50"),
            ("2d", "2017-06-17 10:16:50"),
            ("1500ms", "never"),
        ] {
            let schedule = Schedule::every(text).timezone("UTC");
            if next == "never" {
                assert!(schedule.validate().is_err(), "{text}");
            } else {
                assert_eq!(fmt(schedule.next_after(t0())), next, "{text}");
            }
        }
        // humantime's case is kept: "2M" is two months (2 x 30.44 days).
        let two_months = Schedule::every("2M");
        assert_eq!(
            two_months.next_after(t0()),
            Some(t0() + Duration::seconds(2 * 2_630_016))
        );
        assert_eq!(
            Schedule::every("5m").interval_value(),
            &Interval::Text(Arc::from("5m"))
        );
    }

    #[test]
    fn invalid_intervals_fail_with_a_clear_message() {
        for text in [
            "every 5 minutes",
            "",
            "abc",
            "70 * * *",
            "* * * nope *",
            "500ms",
            "-5s",
            "fortnightly",
        ] {
            let err = Schedule::every(text).validate().expect_err(text);
            assert!(
                err.to_string().starts_with("Invalid interval"),
                "{text}: {err}"
            );
            assert!(Schedule::parse(text).is_err());
            assert!(text.parse::<Schedule>().is_err());
        }
        let err = Schedule::every("every 5 minutes")
            .validate()
            .expect_err("invalid");
        let message = err.to_string();
        assert!(message.contains("cron"), "{message}");
        assert!(message.contains("duration"), "{message}");
    }

    #[test]
    fn parse_and_from_str() {
        let schedule: Schedule = "hourly".parse().expect("valid");
        assert_eq!(
            fmt(schedule.timezone("UTC").next_after(t0())),
            "2017-06-15 11:00:00"
        );
        assert!(Schedule::parse("10 seconds").is_ok());
    }

    #[test]
    fn shorthands() {
        let at = |s: Schedule| fmt(s.timezone("UTC").next_after(t0()));
        assert_eq!(at(Schedule::minutely()), "2017-06-15 10:17:00");
        assert_eq!(at(Schedule::hourly()), "2017-06-15 11:00:00");
        assert_eq!(at(Schedule::daily()), "2017-06-16 00:00:00");
        assert_eq!(at(Schedule::monthly()), "2017-07-01 00:00:00");
        assert_eq!(
            Schedule::minutely().interval_value(),
            &Interval::Text(Arc::from("minutely"))
        );
    }

    #[test]
    fn daily_timestamps() {
        let schedule = Schedule::timestamp("22:15").timezone("UTC");
        assert_eq!(
            runs(&schedule, t0(), 2),
            ["2017-06-15 22:15:00", "2017-06-16 22:15:00"]
        );
        let with_seconds = Schedule::timestamp("10:16:55").timezone("UTC");
        assert_eq!(fmt(with_seconds.next_after(t0())), "2017-06-15 10:16:55");
        let now_exactly = Schedule::timestamp("10:16:50").timezone("UTC");
        assert_eq!(fmt(now_exactly.next_after(t0())), "2017-06-16 10:16:50");
        let single_digit_hour = Schedule::timestamp("9:05").timezone("UTC");
        assert_eq!(
            fmt(single_digit_hour.next_after(t0())),
            "2017-06-16 09:05:00"
        );
        assert_eq!(
            schedule.interval_value(),
            &Interval::Timestamp(Arc::from("22:15"))
        );
    }

    #[test]
    fn date_timestamps_run_once() {
        let once = Schedule::timestamp("2031-01-01 00:00").timezone("UTC");
        assert_eq!(runs(&once, t0(), 2), ["2031-01-01 00:00:00", "never"]);
        let seconds = Schedule::timestamp("2031-01-01 12:30:45").timezone("UTC");
        assert_eq!(fmt(seconds.next_after(t0())), "2031-01-01 12:30:45");
        let past = Schedule::timestamp("2017-01-01 00:00").timezone("UTC");
        assert!(past.validate().is_ok());
        assert_eq!(past.next_after(t0()), None);
    }

    #[test]
    fn invalid_timestamps() {
        for text in [
            "25:00",
            "12:60",
            "2017-02-30 10:00",
            "noon",
            "",
            "10",
            "2017-06-15",
            "22.15",
        ] {
            let err = Schedule::timestamp(text).validate().expect_err(text);
            assert!(matches!(err, Error::InvalidTimestamp { .. }), "{text}");
            assert!(err.to_string().starts_with("Invalid timestamp"), "{err}");
        }
    }

    #[test]
    fn timestamps_and_cron_in_a_zone() {
        // Stockholm is UTC+2 in June.
        let local = Schedule::timestamp("22:15").timezone("Europe/Stockholm");
        assert_eq!(fmt(local.next_after(t0())), "2017-06-15 20:15:00");
        let noon = Schedule::cron("0 12 * * *").timezone("+02:00");
        assert_eq!(fmt(noon.next_after(t0())), "2017-06-16 10:00:00");
        let behind = Schedule::cron("0 12 * * *").timezone("GMT -5");
        assert_eq!(fmt(behind.next_after(t0())), "2017-06-15 17:00:00");
        let india = Schedule::cron("0 16 * * *").timezone("+05:30");
        assert_eq!(fmt(india.next_after(t0())), "2017-06-15 10:30:00");
        // Intervals in seconds ignore the zone.
        let seconds = Schedule::interval(10).timezone("Asia/Tokyo");
        assert_eq!(fmt(seconds.next_after(t0())), "2017-06-15 10:17:00");
    }

    #[test]
    fn unknown_timezone_is_an_error() {
        let schedule = Schedule::hourly().timezone("Mars/Base");
        let err = schedule.validate().expect_err("unknown zone");
        assert_eq!(err.to_string(), "Unknown timezone: Mars/Base");
        assert_eq!(schedule.next_after(t0()), None);
        assert_eq!(schedule.time_zone(), None);
    }

    #[test]
    fn defaults() {
        let schedule = Schedule::hourly();
        assert_eq!(schedule.time_zone(), Some(Zone::Local));
        assert_eq!(schedule.overlap_policy(), Overlap::Skip);
        assert!(!schedule.runs_immediately());
        let tuned = schedule.immediately().overlap(Overlap::Allow(3));
        assert!(tuned.runs_immediately());
        assert_eq!(tuned.overlap_policy(), Overlap::Allow(3));
    }

    // Europe/Stockholm 2024: CET->CEST on 03-31 at 02:00 (01:00 UTC), CEST->CET on 10-27 at
    // 03:00 (01:00 UTC), so 02:00-02:59 local happens twice that night.

    #[test]
    fn stockholm_spring_forward_skips_missing_local_time() {
        let daily = Schedule::cron("30 2 * * *").timezone("Europe/Stockholm");
        assert_eq!(
            runs(&daily, utc(2024, 3, 29, 12, 0, 0), 3),
            [
                "2024-03-30 01:30:00",
                "2024-04-01 00:30:00",
                "2024-04-02 00:30:00"
            ]
        );
        let timestamp = Schedule::timestamp("02:30").timezone("Europe/Stockholm");
        assert_eq!(
            runs(&timestamp, utc(2024, 3, 29, 12, 0, 0), 3),
            [
                "2024-03-30 01:30:00",
                "2024-04-01 00:30:00",
                "2024-04-02 00:30:00"
            ]
        );
    }

    #[test]
    fn stockholm_spring_forward_keeps_hourly_rhythm() {
        let hourly = Schedule::hourly().timezone("Europe/Stockholm");
        assert_eq!(
            runs(&hourly, utc(2024, 3, 30, 23, 30, 0), 4),
            [
                "2024-03-31 00:00:00",
                "2024-03-31 01:00:00",
                "2024-03-31 02:00:00",
                "2024-03-31 03:00:00"
            ]
        );
        let minutely = Schedule::minutely().timezone("Europe/Stockholm");
        assert_eq!(
            runs(&minutely, utc(2024, 3, 31, 0, 58, 30), 3),
            [
                "2024-03-31 00:59:00",
                "2024-03-31 01:00:00",
                "2024-03-31 01:01:00"
            ]
        );
        // Midnight stays local midnight: 23:00 UTC in winter, 22:00 UTC in summer.
        let daily = Schedule::daily().timezone("Europe/Stockholm");
        assert_eq!(
            runs(&daily, utc(2024, 3, 29, 12, 0, 0), 3),
            [
                "2024-03-29 23:00:00",
                "2024-03-30 23:00:00",
                "2024-03-31 22:00:00"
            ]
        );
    }

    #[test]
    fn stockholm_fall_back_runs_fixed_times_once() {
        let daily = Schedule::cron("30 2 * * *").timezone("Europe/Stockholm");
        assert_eq!(
            runs(&daily, utc(2024, 10, 26, 12, 0, 0), 2),
            ["2024-10-27 00:30:00", "2024-10-28 01:30:00"]
        );
        // Asking from inside the repeated hour (second pass) does not run it again.
        assert_eq!(
            fmt(daily.next_after(utc(2024, 10, 27, 1, 15, 0))),
            "2024-10-28 01:30:00"
        );
        let timestamp = Schedule::timestamp("02:30:15").timezone("Europe/Stockholm");
        assert_eq!(
            runs(&timestamp, utc(2024, 10, 26, 12, 0, 0), 2),
            ["2024-10-27 00:30:15", "2024-10-28 01:30:15"]
        );
    }

    #[test]
    fn stockholm_fall_back_keeps_wildcard_rhythm() {
        let hourly = Schedule::hourly().timezone("Europe/Stockholm");
        assert_eq!(
            runs(&hourly, utc(2024, 10, 26, 23, 30, 0), 4),
            [
                "2024-10-27 00:00:00",
                "2024-10-27 01:00:00",
                "2024-10-27 02:00:00",
                "2024-10-27 03:00:00"
            ]
        );
        let quarter = Schedule::cron("*/15 * * * *").timezone("Europe/Stockholm");
        assert_eq!(
            runs(&quarter, utc(2024, 10, 27, 0, 40, 0), 4),
            [
                "2024-10-27 00:45:00",
                "2024-10-27 01:00:00",
                "2024-10-27 01:15:00",
                "2024-10-27 01:30:00"
            ]
        );
        // From the first pass's last minute straight into the second pass.
        let minutely = Schedule::minutely().timezone("Europe/Stockholm");
        assert_eq!(
            runs(&minutely, utc(2024, 10, 27, 0, 58, 30), 3),
            [
                "2024-10-27 00:59:00",
                "2024-10-27 01:00:00",
                "2024-10-27 01:01:00"
            ]
        );
    }

    // America/New_York 2024: EST->EDT on 03-10 at 02:00 (07:00 UTC), EDT->EST on 11-03 at
    // 02:00 (06:00 UTC), so 01:00-01:59 local happens twice.

    #[test]
    fn new_york_spring_forward() {
        let daily = Schedule::cron("30 2 * * *").timezone("America/New_York");
        assert_eq!(
            runs(&daily, utc(2024, 3, 8, 12, 0, 0), 3),
            [
                "2024-03-09 07:30:00",
                "2024-03-11 06:30:00",
                "2024-03-12 06:30:00"
            ]
        );
        let midnight = Schedule::daily().timezone("America/New_York");
        assert_eq!(
            runs(&midnight, utc(2024, 3, 9, 12, 0, 0), 2),
            ["2024-03-10 05:00:00", "2024-03-11 04:00:00"]
        );
        let hourly = Schedule::hourly().timezone("America/New_York");
        assert_eq!(
            runs(&hourly, utc(2024, 3, 10, 5, 30, 0), 3),
            [
                "2024-03-10 06:00:00",
                "2024-03-10 07:00:00",
                "2024-03-10 08:00:00"
            ]
        );
    }

    #[test]
    fn new_york_fall_back() {
        let daily = Schedule::cron("30 1 * * *").timezone("America/New_York");
        assert_eq!(
            runs(&daily, utc(2024, 11, 2, 4, 0, 0), 3),
            [
                "2024-11-02 05:30:00",
                "2024-11-03 05:30:00",
                "2024-11-04 06:30:00"
            ]
        );
        let hourly = Schedule::hourly().timezone("America/New_York");
        assert_eq!(
            runs(&hourly, utc(2024, 11, 3, 4, 30, 0), 4),
            [
                "2024-11-03 05:00:00",
                "2024-11-03 06:00:00",
                "2024-11-03 07:00:00",
                "2024-11-03 08:00:00"
            ]
        );
        let once = Schedule::timestamp("2024-11-03 01:30").timezone("America/New_York");
        assert_eq!(
            runs(&once, utc(2024, 11, 1, 0, 0, 0), 2),
            ["2024-11-03 05:30:00", "never"]
        );
    }

    #[test]
    fn due_times_are_whole_seconds() {
        let after = t0() + Duration::microseconds(123_456);
        for schedule in [
            Schedule::interval(7),
            Schedule::every("5m"),
            Schedule::cron("* * * * *").timezone("UTC"),
            Schedule::timestamp("10:20:30").timezone("UTC"),
        ] {
            let next = schedule.next_after(after).expect("runs");
            assert_eq!(next.timestamp_subsec_nanos(), 0, "{schedule:?}");
        }
    }
}
