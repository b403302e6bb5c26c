//! Time zones: IANA names (feature `tz`), `+HH:MM` style offsets (mapped as tomodachi maps
//! them), UTC, system local.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, Offset, TimeZone, Utc};
#[cfg(feature = "tz")]
use chrono_tz::Tz;

use crate::Error;

/// The time zone a schedule's cron expression or timestamp is read in.
///
/// Parsed from an IANA name (`"Europe/Stockholm"`, case-insensitive), or an offset in one of
/// tomodachi's spellings (`"+02:00"`, `"+0200"`, `"GMT +2"`, `"GMT -05:00"`, `"00:00"`). Whole-hour
/// offsets up to ±12 become the `Etc/GMT∓H` zone (sign flipped, as tomodachi does; zero is
/// `GMT0`); other offsets up to ±14:00 (`"+05:30"`, `"+13:00"`) become a fixed offset, which
/// tomodachi rejects.
///
/// Without the `tz` feature (no tz database) a name other than `UTC`, `GMT`, `Etc/UTC` or
/// `GMT0` is an unknown time zone, and whole-hour offsets are fixed offsets too (the same
/// instants as their `Etc/GMT∓H` zones).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's local time zone (tomodachi's default when no `timezone` is given).
    Local,
    /// An IANA time zone.
    #[cfg(feature = "tz")]
    Tz(Tz),
    /// A fixed UTC offset.
    Fixed(FixedOffset),
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Local => f.write_str("local"),
            #[cfg(feature = "tz")]
            Zone::Tz(tz) => f.write_str(tz.name()),
            Zone::Fixed(offset) => write!(f, "{offset}"),
        }
    }
}

impl FromStr for Zone {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Zone::parse(input)
    }
}

impl Zone {
    /// Parses a time zone name or offset; see the type docs for the accepted forms.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTimezone`] for anything else; [`Error::TimezoneNeedsTz`] for a name
    /// other than UTC's without the `tz` feature.
    pub fn parse(input: &str) -> Result<Zone, Error> {
        let trimmed = input.trim();
        let unknown = || Error::UnknownTimezone {
            timezone: input.to_owned(),
        };
        if let Some(seconds) = parse_offset(trimmed) {
            #[cfg(feature = "tz")]
            if seconds % 3600 == 0 && (seconds / 3600).abs() <= 12 {
                let name = match seconds / 3600 {
                    0 => "GMT0".to_owned(),
                    h if h > 0 => format!("Etc/GMT-{h}"),
                    h => format!("Etc/GMT+{}", -h),
                };
                return name.parse::<Tz>().map(Zone::Tz).map_err(|_| unknown());
            }
            return FixedOffset::east_opt(seconds)
                .map(Zone::Fixed)
                .ok_or_else(unknown);
        }
        #[cfg(not(feature = "tz"))]
        if !trimmed.is_empty()
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b"/_-+0123456789".contains(&b))
            && trimmed.bytes().any(|b| b.is_ascii_alphabetic())
        {
            return Self::named(trimmed).ok_or_else(|| Error::TimezoneNeedsTz {
                timezone: input.to_owned(),
            });
        }
        Self::named(trimmed).ok_or_else(unknown)
    }

    /// An IANA zone by name, case-insensitive.
    #[cfg(feature = "tz")]
    fn named(name: &str) -> Option<Zone> {
        if let Ok(tz) = name.parse::<Tz>() {
            return Some(Zone::Tz(tz));
        }
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
            .copied()
            .map(Zone::Tz)
    }

    /// Without the tz database: the names of UTC only.
    #[cfg(not(feature = "tz"))]
    fn named(name: &str) -> Option<Zone> {
        ["UTC", "Etc/UTC", "GMT", "GMT0", "Etc/GMT"]
            .iter()
            .any(|utc| utc.eq_ignore_ascii_case(name))
            .then(|| Zone::Fixed(Utc.fix()))
    }

    /// Local wall-clock time of `instant` in this zone.
    pub(crate) fn naive(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Local => instant.with_timezone(&Local).naive_local(),
            #[cfg(feature = "tz")]
            Zone::Tz(tz) => instant.with_timezone(tz).naive_local(),
            Zone::Fixed(offset) => instant.with_timezone(offset).naive_local(),
        }
    }

    /// UTC offset in seconds at `instant`.
    pub(crate) fn offset_seconds(&self, instant: DateTime<Utc>) -> i32 {
        match self {
            Zone::Local => instant
                .with_timezone(&Local)
                .offset()
                .fix()
                .local_minus_utc(),
            #[cfg(feature = "tz")]
            Zone::Tz(tz) => instant.with_timezone(tz).offset().fix().local_minus_utc(),
            Zone::Fixed(offset) => offset.local_minus_utc(),
        }
    }

    /// Every instant whose local time is `naive`: none in a gap (spring forward), two in a fold
    /// (fall back, earliest first), else one.
    pub(crate) fn instants(&self, naive: NaiveDateTime) -> Instants {
        fn collect<T: TimeZone>(tz: &T, naive: NaiveDateTime) -> Instants {
            match tz.from_local_datetime(&naive) {
                chrono::LocalResult::Single(t) => Instants::One(t.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(a, b) => {
                    let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                    Instants::Two(a.min(b), a.max(b))
                }
                chrono::LocalResult::None => Instants::None,
            }
        }
        match self {
            Zone::Local => collect(&Local, naive),
            #[cfg(feature = "tz")]
            Zone::Tz(tz) => collect(tz, naive),
            Zone::Fixed(offset) => collect(offset, naive),
        }
    }
}

/// Instants for one local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instants {
    None,
    One(DateTime<Utc>),
    Two(DateTime<Utc>, DateTime<Utc>),
}

/// `+HH:MM`, `+HHMM`, `+H`, `GMT +H`, `GMT+HH:MM`, `00:00`, `0000` -> seconds east of UTC.
fn parse_offset(input: &str) -> Option<i32> {
    let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    let (had_gmt, rest) = match compact.strip_prefix("GMT") {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        // Unsigned only in tomodachi's zero spellings "00:00" / "0000".
        _ if !had_gmt && (rest == "00:00" || rest == "0000") => (1, rest),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) if h.len() == 2 && m.len() == 2 => (h, m),
        Some(_) => return None,
        None if digits.len() == 4 => digits.split_at(2),
        // A bare hour (`+1`, `-05`) only after "GMT", as tomodachi spells them.
        None if had_gmt && (1..=2).contains(&digits.len()) => (digits, "00"),
        None => return None,
    };
    if !hours
        .bytes()
        .chain(minutes.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if minutes >= 60 || hours * 60 + minutes > 14 * 60 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> Zone {
        Zone::Tz(name.parse().expect("known zone"))
    }

    #[test]
    fn iana_names_case_insensitive() {
        assert_eq!(Zone::parse("Europe/Stockholm"), Ok(tz("Europe/Stockholm")));
        assert_eq!(Zone::parse("europe/stockholm"), Ok(tz("Europe/Stockholm")));
        assert_eq!(Zone::parse("UTC"), Ok(tz("UTC")));
        assert_eq!(Zone::parse("America/New_York"), Ok(tz("America/New_York")));
    }

    #[test]
    fn offsets_map_like_tomodachi() {
        for spelling in [
            "+02:00",
            "+0200",
            "GMT +0200",
            "GMT +02:00",
            "GMT +02",
            "GMT +2",
            "GMT+2",
        ] {
            assert_eq!(Zone::parse(spelling), Ok(tz("Etc/GMT-2")), "{spelling}");
        }
        for spelling in ["-05:00", "-0500", "GMT -05:00", "GMT -5"] {
            assert_eq!(Zone::parse(spelling), Ok(tz("Etc/GMT+5")), "{spelling}");
        }
        for spelling in ["+00:00", "-00:00", "00:00", "0000", "GMT +0", "GMT -00"] {
            assert_eq!(Zone::parse(spelling), Ok(tz("GMT0")), "{spelling}");
        }
        assert_eq!(Zone::parse("+12:00"), Ok(tz("Etc/GMT-12")));
        assert_eq!(Zone::parse("-12:00"), Ok(tz("Etc/GMT+12")));
    }

    #[test]
    fn other_offsets_are_fixed() {
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).expect("valid");
        assert_eq!(Zone::parse("+05:30"), Ok(Zone::Fixed(ist)));
        let plus13 = FixedOffset::east_opt(13 * 3600).expect("valid");
        assert_eq!(Zone::parse("+13:00"), Ok(Zone::Fixed(plus13)));
    }

    #[test]
    fn unknown_zones_are_errors() {
        for name in [
            "Mars/Olympus",
            "",
            "+25:00",
            "+02:75",
            "2",
            "+2",
            "GMT +",
            "Europe/",
        ] {
            let err = Zone::parse(name).expect_err("unknown");
            assert_eq!(err.to_string(), format!("Unknown timezone: {name}"));
        }
    }

    #[test]
    fn instants_in_gap_and_fold() {
        let stockholm = tz("Europe/Stockholm");
        let day = |d: u32, h: u32, m: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 3, d)
                .and_then(|x| x.and_hms_opt(h, m, 0))
                .expect("valid")
        };
        assert_eq!(stockholm.instants(day(31, 2, 30)), Instants::None);
        let fold = chrono::NaiveDate::from_ymd_opt(2024, 10, 27)
            .and_then(|x| x.and_hms_opt(2, 30, 0))
            .expect("valid");
        match stockholm.instants(fold) {
            Instants::Two(a, b) => {
                assert_eq!(a.to_rfc3339(), "2024-10-27T00:30:00+00:00");
                assert_eq!(b.to_rfc3339(), "2024-10-27T01:30:00+00:00");
            }
            other => panic!("expected two instants, got {other:?}"),
        }
    }
}
