//! tomodachi's crontab dialect: parsing and "next matching local minute".
//!
//! Fields: `minute hour day month weekday [year]`, missing trailing fields are `*`, there is
//! no seconds field. Each field is a comma list of `*`, `?`, values, names (months and
//! weekdays), ranges `a-b` and steps `x/n`. A step keeps the values `v` of the field (or of the
//! range before it) with `v % n == x % n`, as tomodachi does (so `*/2` in the day field means
//! even days). `L` in the day field is the last day of the month; `L<weekday>` (or
//! `L<weekday>-<weekday>`) in the weekday field is the last such weekday of the month. When both
//! the day and the weekday field are restricted, a date matches if either matches.
//!
//! Hand-written rather than the `cron` crate because that crate speaks another dialect: it
//! wants a seconds field first (6 or 7 fields; tomodachi's 5-field expressions fail with an
//! unhelpful error), its steps count from the start of the range instead of tomodachi's
//! `v % n == x % n` rule, it has no `L<weekday>`, and its year field is not tomodachi's
//! optional sixth field. Translating between the two would be more code than this module.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// First and last year a cron expression can match (tomodachi's range).
pub(crate) const MIN_YEAR: i32 = 1970;
/// Last year a cron expression can match.
pub(crate) const MAX_YEAR: i32 = 2099;

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The `@` macros tomodachi understands.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
    ("@minutely", "* * * * *"),
];

/// A set of small integers (at most 192 values above an offset).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Set {
    bits: [u64; 3],
}

impl Set {
    const EMPTY: Set = Set { bits: [0; 3] };

    fn insert(&mut self, index: u32) {
        self.bits[(index / 64) as usize] |= 1 << (index % 64);
    }

    fn contains(&self, index: u32) -> bool {
        index < 192 && self.bits[(index / 64) as usize] & (1 << (index % 64)) != 0
    }

    fn is_empty(&self) -> bool {
        self.bits == [0; 3]
    }

    /// Smallest member `>= from`.
    fn first_from(&self, from: u32) -> Option<u32> {
        (from..192).find(|&i| self.contains(i))
    }

    fn min(&self) -> Option<u32> {
        self.first_from(0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Minute,
    Hour,
    Day,
    Month,
    Weekday,
    Year,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Minute,
        Kind::Hour,
        Kind::Day,
        Kind::Month,
        Kind::Weekday,
        Kind::Year,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Minute => "minute",
            Kind::Hour => "hour",
            Kind::Day => "day",
            Kind::Month => "month",
            Kind::Weekday => "weekday",
            Kind::Year => "year",
        }
    }

    /// Inclusive value range (weekday 7 is Sunday, folded into 0).
    fn range(self) -> (u32, u32) {
        match self {
            Kind::Minute => (0, 59),
            Kind::Hour => (0, 23),
            Kind::Day => (1, 31),
            Kind::Month => (1, 12),
            Kind::Weekday => (0, 7),
            Kind::Year => (MIN_YEAR as u32, MAX_YEAR as u32),
        }
    }

    /// Offset subtracted before storing in a [`Set`].
    fn base(self) -> u32 {
        match self {
            Kind::Year => MIN_YEAR as u32,
            _ => 0,
        }
    }

    fn name_value(self, name: &str) -> Option<u32> {
        let names: &[&str] = match self {
            Kind::Month => &MONTH_NAMES,
            Kind::Weekday => &WEEKDAY_NAMES,
            _ => return None,
        };
        let index = names.iter().position(|n| *n == name)? as u32;
        Some(if self == Kind::Month {
            index + 1
        } else {
            index
        })
    }
}

/// A parsed cron expression in tomodachi's dialect.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    minutes: Set,
    hours: Set,
    days: Set,
    last_day: bool,
    months: Set,
    weekdays: Set,
    last_weekdays: Set,
    years: Set,
    day_restricted: bool,
    weekday_restricted: bool,
    /// Minute or hour field starts with `*`: such schedules run on both passes of a repeated
    /// (DST fall-back) local hour, fixed-time schedules only on the first.
    wildcard_time: bool,
}

impl std::fmt::Debug for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cron").finish_non_exhaustive()
    }
}

/// Why a cron expression is invalid.
pub(crate) type CronError = String;

impl Cron {
    /// Parses an expression (already lowercased or not: names are case-insensitive).
    pub(crate) fn parse(expression: &str) -> Result<Cron, CronError> {
        let lowered = expression.trim().to_ascii_lowercase();
        let expanded = MACROS
            .iter()
            .find(|(name, _)| *name == lowered)
            .map_or(lowered.as_str(), |(_, cron)| cron);
        if expanded.starts_with('@') {
            return Err(format!("unknown macro {expanded:?}"));
        }
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.is_empty() {
            return Err("empty expression".to_owned());
        }
        if fields.len() > Kind::ALL.len() {
            return Err(format!(
                "too many fields ({}; expected minute hour day month weekday [year])",
                fields.len()
            ));
        }

        let mut cron = Cron {
            minutes: Set::EMPTY,
            hours: Set::EMPTY,
            days: Set::EMPTY,
            last_day: false,
            months: Set::EMPTY,
            weekdays: Set::EMPTY,
            last_weekdays: Set::EMPTY,
            years: Set::EMPTY,
            day_restricted: false,
            weekday_restricted: false,
            wildcard_time: false,
        };
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let field = fields.get(i).copied().unwrap_or("*");
            let parsed = parse_field(kind, field)?;
            match kind {
                Kind::Minute => {
                    cron.minutes = parsed.values;
                    cron.wildcard_time |= field.starts_with('*');
                }
                Kind::Hour => {
                    cron.hours = parsed.values;
                    cron.wildcard_time |= field.starts_with('*');
                }
                Kind::Day => {
                    cron.days = parsed.values;
                    cron.last_day = !parsed.last.is_empty();
                    cron.day_restricted = !parsed.unrestricted;
                }
                Kind::Month => cron.months = parsed.values,
                Kind::Weekday => {
                    cron.weekdays = parsed.values;
                    cron.last_weekdays = parsed.last;
                    cron.weekday_restricted = !parsed.unrestricted;
                }
                Kind::Year => cron.years = parsed.values,
            }
        }

        // tomodachi: a day-of-month that no selected month (in any selected year) has is an error.
        if !cron.last_day
            && let Some(min_day) = cron.days.min()
        {
            let possible = (MIN_YEAR..=MAX_YEAR)
                .filter(|y| cron.years.contains((*y - MIN_YEAR) as u32))
                .any(|y| {
                    (1..=12u32)
                        .filter(|m| cron.months.contains(*m))
                        .any(|m| days_in_month(y, m) >= min_day)
                });
            if !possible {
                return Err("days out of scope (no selected month has that day)".to_owned());
            }
        }
        Ok(cron)
    }

    /// Whether both passes of a repeated local time fire.
    pub(crate) fn wildcard_time(&self) -> bool {
        self.wildcard_time
    }

    fn date_matches(&self, date: NaiveDate) -> bool {
        let last = days_in_month(date.year(), date.month());
        let day = date.day();
        let weekday = date.weekday().num_days_from_sunday();
        let day_ok = self.days.contains(day) || (self.last_day && day == last);
        let weekday_ok = self.weekdays.contains(weekday)
            || (self.last_weekdays.contains(weekday) && day + 7 > last);
        match (self.day_restricted, self.weekday_restricted) {
            (true, true) => day_ok || weekday_ok,
            (true, false) => day_ok,
            (false, true) => weekday_ok,
            (false, false) => true,
        }
    }

    /// First matching minute at or after `from` (rounded up to a whole minute), in naive local
    /// time; `None` past [`MAX_YEAR`].
    pub(crate) fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut from = from.with_nanosecond(0)?;
        if from.second() != 0 {
            from = from.with_second(0)? + Duration::minutes(1);
        }
        let mut date = from.date();
        let mut first_time = Some(from.time());
        loop {
            let year = date.year();
            if year > MAX_YEAR {
                return None;
            }
            if year < MIN_YEAR {
                date = NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1)?;
                first_time = None;
                continue;
            }
            if !self.years.contains((year - MIN_YEAR) as u32) {
                date = NaiveDate::from_ymd_opt(year + 1, 1, 1)?;
                first_time = None;
                continue;
            }
            if !self.months.contains(date.month()) {
                date = first_of_next_month(date)?;
                first_time = None;
                continue;
            }
            if self.date_matches(date) {
                let start = first_time.unwrap_or(NaiveTime::MIN);
                if let Some(time) = self.first_time_from(start.hour(), start.minute()) {
                    return Some(date.and_time(time));
                }
            }
            date = date.succ_opt()?;
            first_time = None;
        }
    }

    fn first_time_from(&self, hour: u32, minute: u32) -> Option<NaiveTime> {
        let h = self.hours.first_from(hour)?;
        if h == hour {
            if let Some(m) = self.minutes.first_from(minute).filter(|m| *m < 60) {
                return NaiveTime::from_hms_opt(h, m, 0);
            }
            let h = self.hours.first_from(hour + 1).filter(|h| *h < 24)?;
            return NaiveTime::from_hms_opt(h, self.minutes.min()?, 0);
        }
        if h >= 24 {
            return None;
        }
        NaiveTime::from_hms_opt(h, self.minutes.min()?, 0)
    }
}

struct Field {
    values: Set,
    last: Set,
    /// `*` or `?` (alone): the field does not restrict.
    unrestricted: bool,
}

fn parse_field(kind: Kind, field: &str) -> Result<Field, CronError> {
    let invalid = |part: &str, why: &str| -> CronError {
        format!("invalid value for {} ({part:?}): {why}", kind.name())
    };
    let (lo, hi) = kind.range();
    let mut values = Set::EMPTY;
    let mut last = Set::EMPTY;
    let insert = |set: &mut Set, v: u32| {
        let v = if kind == Kind::Weekday && v == 7 {
            0
        } else {
            v
        };
        set.insert(v - kind.base());
    };
    let value = |text: &str| -> Result<u32, CronError> {
        if let Some(v) = kind.name_value(text) {
            return Ok(v);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(text, "not a number or name"));
        }
        let v: u32 = text
            .parse()
            .map_err(|_| invalid(text, "number out of range"))?;
        if v < lo || v > hi {
            return Err(invalid(text, &format!("outside {lo}-{hi}")));
        }
        Ok(v)
    };

    for part in field.split(',') {
        if part.is_empty() {
            return Err(invalid(field, "empty list item"));
        }
        // `L` alone (day: last day of month; weekday: the last 7 days) or `L<weekday>[-<weekday>]`.
        let (is_last, body) = match part.strip_prefix('l') {
            Some(rest) => match kind {
                Kind::Day if rest.is_empty() => {
                    last.insert(0);
                    continue;
                }
                Kind::Day => return Err(invalid(part, "`L` stands alone in the day field")),
                Kind::Weekday if rest.is_empty() => (true, "*"),
                Kind::Weekday => (true, rest),
                _ => {
                    return Err(invalid(
                        part,
                        "`L` is only valid in the day and weekday fields",
                    ));
                }
            },
            None => (false, part),
        };

        let (range_text, step) = match body.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| invalid(part, "step must be a positive number"))?;
                (range, Some(step))
            }
            None => (body, None),
        };
        let (start, end, anchor) = if range_text == "*" || range_text == "?" {
            (lo, hi, 0)
        } else if let Some((a, b)) = range_text.split_once('-') {
            let a_value = value(a)?;
            let mut b_value = value(b)?;
            if kind == Kind::Weekday && b_value < a_value && b == "sun" {
                b_value = 7;
            }
            if b_value < a_value {
                return Err(invalid(part, "range end is before its start"));
            }
            (a_value, b_value, a_value)
        } else {
            let v = value(range_text)?;
            match step {
                // `x/n`: every value congruent to x modulo n (tomodachi).
                Some(_) => (lo, hi, v),
                None => (v, v, v),
            }
        };
        let target = if is_last { &mut last } else { &mut values };
        let mut any = false;
        for v in start..=end {
            if step.is_none_or(|n| v % n == anchor % n) {
                insert(target, v);
                any = true;
            }
        }
        if !any {
            return Err(invalid(part, "matches no value"));
        }
    }
    let unrestricted = field == "*" || field == "?";
    if kind == Kind::Day && !last.is_empty() && values.is_empty() {
        // Only `L`: the day set stays empty, `last_day` carries the meaning.
        return Ok(Field {
            values,
            last,
            unrestricted,
        });
    }
    if kind == Kind::Weekday && !unrestricted && values.is_empty() && last.is_empty() {
        return Err(invalid(field, "matches no value"));
    }
    Ok(Field {
        values,
        last,
        unrestricted,
    })
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(28, |d| d.day())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .expect("valid test date")
    }

    /// tomodachi's `get_next_datetime(expr, t)`: first match at or after `t` rounded up.
    fn next(expr: &str, t: NaiveDateTime) -> Option<NaiveDateTime> {
        Cron::parse(expr).expect("valid expression").next_local(t)
    }

    #[test]
    fn macros_match_tomodachi() {
        let t = at(2017, 6, 15, 10, 16, 50);
        assert_eq!(next("@yearly", t), Some(at(2018, 1, 1, 0, 0, 0)));
        assert_eq!(next("@annually", t), Some(at(2018, 1, 1, 0, 0, 0)));
        assert_eq!(next("@monthly", t), Some(at(2017, 7, 1, 0, 0, 0)));
        assert_eq!(next("@daily", t), Some(at(2017, 6, 16, 0, 0, 0)));
        assert_eq!(next("@hourly", t), Some(at(2017, 6, 15, 11, 0, 0)));
        assert_eq!(next("@minutely", t), Some(at(2017, 6, 15, 10, 17, 0)));
        // @weekly is Sunday (2017-06-18 was a Sunday).
        assert_eq!(next("@weekly", t), Some(at(2017, 6, 18, 0, 0, 0)));
        assert_eq!(next("@HOURLY", t), Some(at(2017, 6, 15, 11, 0, 0)));
    }

    #[test]
    fn basic_fields_lists_ranges_steps() {
        let t = at(2017, 6, 15, 10, 16, 50);
        assert_eq!(next("* * * * *", t), Some(at(2017, 6, 15, 10, 17, 0)));
        assert_eq!(next("1 * * * *", t), Some(at(2017, 6, 15, 11, 1, 0)));
        assert_eq!(next("*/2 * * * *", t), Some(at(2017, 6, 15, 10, 18, 0)));
        assert_eq!(next("1/2 * * * *", t), Some(at(2017, 6, 15, 10, 17, 0)));
        assert_eq!(next("1-3/2 * * * *", t), Some(at(2017, 6, 15, 11, 1, 0)));
        assert_eq!(next("0/4 * * * *", t), Some(at(2017, 6, 15, 10, 20, 0)));
        assert_eq!(next("7/8 * * * *", t), Some(at(2017, 6, 15, 10, 23, 0)));
        assert_eq!(next("15 */2 * * *", t), Some(at(2017, 6, 15, 12, 15, 0)));
        assert_eq!(next("15-30 * * * *", t), Some(at(2017, 6, 15, 10, 17, 0)));
        assert_eq!(next("20-30 * * * *", t), Some(at(2017, 6, 15, 10, 20, 0)));
        assert_eq!(next("5,10,55 * * * *", t), Some(at(2017, 6, 15, 10, 55, 0)));
        assert_eq!(
            next("10-15,30,45 10 * * *", t),
            Some(at(2017, 6, 15, 10, 30, 0))
        );
        assert_eq!(
            next("10-15,30,45 10 * * *", at(2017, 6, 15, 10, 12, 50)),
            Some(at(2017, 6, 15, 10, 13, 0))
        );
        assert_eq!(
            next("10-15,30,45 10 * * *", at(2017, 6, 15, 9, 12, 50)),
            Some(at(2017, 6, 15, 10, 10, 0))
        );
    }

    #[test]
    fn exact_minute_is_included_and_seconds_round_up() {
        assert_eq!(
            next("* * * * *", at(2017, 6, 15, 10, 16, 0)),
            Some(at(2017, 6, 15, 10, 16, 0))
        );
        assert_eq!(
            next("59 23 31 12 *", at(2017, 12, 31, 23, 59, 1)),
            Some(at(2018, 12, 31, 23, 59, 0))
        );
    }

    #[test]
    fn bare_number_is_minute_of_every_hour() {
        let t = at(2017, 6, 15, 10, 16, 50);
        assert_eq!(next("10", t), Some(at(2017, 6, 15, 11, 10, 0)));
        assert_eq!(next("20", t), Some(at(2017, 6, 15, 10, 20, 0)));
    }

    #[test]
    fn weekdays_numbers_names_and_sunday_as_seven() {
        let t = at(2017, 6, 15, 10, 16, 50); // Thursday
        assert_eq!(next("* * * * 0", t), Some(at(2017, 6, 18, 0, 0, 0)));
        assert_eq!(next("* * * * 1", t), Some(at(2017, 6, 19, 0, 0, 0)));
        assert_eq!(next("* * * * 2", t), Some(at(2017, 6, 20, 0, 0, 0)));
        assert_eq!(next("* * * * 3", t), Some(at(2017, 6, 21, 0, 0, 0)));
        assert_eq!(next("* * * * 4", t), Some(at(2017, 6, 15, 10, 17, 0)));
        assert_eq!(next("* * * * 5", t), Some(at(2017, 6, 16, 0, 0, 0)));
        assert_eq!(next("* * * * 6", t), Some(at(2017, 6, 17, 0, 0, 0)));
        assert_eq!(next("* * * * 7", t), Some(at(2017, 6, 18, 0, 0, 0)));
        assert_eq!(next("* * * * mon-tue", t), Some(at(2017, 6, 19, 0, 0, 0)));

        let t = at(2017, 6, 19, 10, 16, 50); // Monday
        assert_eq!(next("* * * * 5-6", t), Some(at(2017, 6, 23, 0, 0, 0)));
        assert_eq!(next("* * * * 0-4", t), Some(at(2017, 6, 19, 10, 17, 0)));
        assert_eq!(next("* * * * 5-7", t), Some(at(2017, 6, 23, 0, 0, 0)));
        assert_eq!(next("* * * * fri-sat", t), Some(at(2017, 6, 23, 0, 0, 0)));
        assert_eq!(next("* * * * sun-fri", t), Some(at(2017, 6, 19, 10, 17, 0)));
        assert_eq!(next("* * * * fri-sun", t), Some(at(2017, 6, 23, 0, 0, 0)));
        assert_eq!(next("* * * * 0-7", t), Some(at(2017, 6, 19, 10, 17, 0)));
        assert_eq!(next("* * * * FRI-SUN", t), Some(at(2017, 6, 23, 0, 0, 0)));
        assert!(Cron::parse("* * * * wed-mon").is_err());
        assert!(Cron::parse("* * * * tue-mon").is_err());
    }

    #[test]
    fn day_and_weekday_both_set_means_either() {
        let t = at(2017, 8, 24, 18, 1, 0); // Thursday
        assert_eq!(next("0 10 1-7 * *", t), Some(at(2017, 9, 1, 10, 0, 0)));
        assert_eq!(next("0 10 * * mon", t), Some(at(2017, 8, 28, 10, 0, 0)));
        assert_eq!(next("0 10 1-7 * mon", t), Some(at(2017, 8, 28, 10, 0, 0)));
        assert_eq!(next("0 10 1-25 * mon", t), Some(at(2017, 8, 25, 10, 0, 0)));
        assert_eq!(next("0 * 1-25 * mon", t), Some(at(2017, 8, 24, 19, 0, 0)));
        assert_eq!(next("0 * 1-24 * mon", t), Some(at(2017, 8, 24, 19, 0, 0)));
        assert_eq!(next("0 * 1-23 * mon", t), Some(at(2017, 8, 28, 0, 0, 0)));
    }

    #[test]
    fn last_day_and_last_weekday() {
        let t = at(2017, 6, 15, 10, 16, 50);
        assert_eq!(next("39 3 L * *", t), Some(at(2017, 6, 30, 3, 39, 0)));
        assert_eq!(next("0 0 L 2 *", t), Some(at(2018, 2, 28, 0, 0, 0)));
        assert_eq!(next("0 0 L 2 * 2020", t), Some(at(2020, 2, 29, 0, 0, 0)));
        assert_eq!(next("55 7 * * Lsun", t), Some(at(2017, 6, 25, 7, 55, 0)));
        assert_eq!(next("* * * * Lsun", t), Some(at(2017, 6, 25, 0, 0, 0)));
        assert_eq!(next("* * * * Lwed-fri", t), Some(at(2017, 6, 28, 0, 0, 0)));
        assert_eq!(
            next("30 5 * jan,mar Ltue", t),
            Some(at(2018, 1, 30, 5, 30, 0))
        );
        assert!(Cron::parse("0 0 L5 * *").is_err());
        assert!(Cron::parse("0 L * * *").is_err());
    }

    #[test]
    fn months_years_and_combinations() {
        let t = at(2017, 6, 15, 10, 16, 50);
        assert_eq!(
            next("* * 4-15 feb-jun wed-fri", t),
            Some(at(2017, 6, 15, 10, 17, 0))
        );
        assert_eq!(
            next("3-20/2 5 4-15 feb-may *", t),
            Some(at(2018, 2, 4, 5, 3, 0))
        );
        assert_eq!(
            next("3-20/2 5 4-15 feb-may wed", t),
            Some(at(2018, 2, 4, 5, 3, 0))
        );
        assert_eq!(
            next("3-20/2 5 10-15 feb-may wed", t),
            Some(at(2018, 2, 7, 5, 3, 0))
        );
        assert_eq!(
            next("3-20/2 5 * feb-may wed", t),
            Some(at(2018, 2, 7, 5, 3, 0))
        );
        assert_eq!(
            next("3-20/2 5 4-15 feb-may mon,tue-wed", t),
            Some(at(2018, 2, 4, 5, 3, 0))
        );
        assert_eq!(
            next("3-20/2 5 4-15 feb-may wed-fri", t),
            Some(at(2018, 2, 1, 5, 3, 0))
        );
        assert_eq!(
            next("3-20/2 5 7-15 feb-may wed,tue,sat,mon", t),
            Some(at(2018, 2, 3, 5, 3, 0))
        );
        assert_eq!(next("* * 29 2 *", t), Some(at(2020, 2, 29, 0, 0, 0)));
        assert_eq!(next("* * 29 2 0", t), Some(at(2018, 2, 4, 0, 0, 0)));
        assert_eq!(next("* * 29 2 0 2020", t), Some(at(2020, 2, 2, 0, 0, 0)));
        assert_eq!(next("* * 29 2 mon 2048", t), Some(at(2048, 2, 3, 0, 0, 0)));
        assert_eq!(next("* * 29 2 * 2048", t), Some(at(2048, 2, 29, 0, 0, 0)));
        assert_eq!(
            next("* * 29 2 * 2049,2051-2060", t),
            Some(at(2052, 2, 29, 0, 0, 0))
        );
        assert_eq!(
            next("0 0 1 jan/2 * 2011-2013", at(2011, 1, 10, 23, 59, 30)),
            Some(at(2011, 3, 1, 0, 0, 0))
        );
    }

    #[test]
    fn steps_are_modulo_like_tomodachi() {
        let t = at(2017, 6, 15, 10, 16, 50);
        // `*/2` in the day field: even days (x % 2 == 0).
        assert_eq!(next("0 0 */2 * *", t), Some(at(2017, 6, 16, 0, 0, 0)));
        // `*/3` in the month field: months 3, 6, 9, 12.
        assert_eq!(next("0 0 1 */3 *", t), Some(at(2017, 9, 1, 0, 0, 0)));
        // `15/10` in the hour field: hours congruent to 5 mod 10 (5 and 15).
        assert_eq!(
            next("0 15/10 * * *", at(2017, 6, 15, 1, 0, 0)),
            Some(at(2017, 6, 15, 5, 0, 0))
        );
    }

    #[test]
    fn question_mark_is_a_wildcard() {
        let t = at(2017, 6, 15, 10, 16, 50); // Thursday
        assert_eq!(next("0 0 ? * mon", t), Some(at(2017, 6, 19, 0, 0, 0)));
        assert_eq!(next("0 0 1 * ?", t), Some(at(2017, 7, 1, 0, 0, 0)));
    }

    #[test]
    fn impossible_and_past_dates() {
        let t = at(2017, 6, 15, 10, 16, 50);
        assert_eq!(next("0 0 1 jan/2 * 2011-2013", t), None);
        assert_eq!(next("0 0 1 1 * 2099", at(2099, 6, 1, 0, 0, 0)), None);
        assert!(Cron::parse("* * 29 2 * 2017-2019").is_err());
        assert!(Cron::parse("* * 29 2 * 2049-2050,2073-2075").is_err());
        assert!(Cron::parse("* * 30 2 *").is_err());
        assert!(Cron::parse("* * 31 4,6 *").is_err());
        assert!(Cron::parse("* * 31 4,5 *").is_ok());
    }

    #[test]
    fn invalid_expressions_are_rejected() {
        for expr in [
            "70 * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "* * * x-dec *",
            "* * * jan-y *",
            "* * * nope *",
            "* * * * * 1969",
            "* * * * * 2100",
            "* * * * * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "1,,2 * * * *",
            "",
            "   ",
            "@fortnightly",
            "mon * * * *",
            "every 5 minutes",
            "5m",
        ] {
            assert!(Cron::parse(expr).is_err(), "{expr:?} should be rejected");
        }
    }

    #[test]
    fn error_messages_name_the_field() {
        let err = Cron::parse("70 * * *").expect_err("invalid");
        assert!(err.contains("minute"), "{err}");
        let err = Cron::parse("* * * nope *").expect_err("invalid");
        assert!(err.contains("month"), "{err}");
    }

    #[test]
    fn wildcard_time_detection() {
        assert!(Cron::parse("* * * * *").expect("valid").wildcard_time());
        assert!(Cron::parse("0 * * * *").expect("valid").wildcard_time());
        assert!(Cron::parse("*/5 3 * * *").expect("valid").wildcard_time());
        assert!(!Cron::parse("30 2 * * *").expect("valid").wildcard_time());
        assert!(!Cron::parse("@daily").expect("valid").wildcard_time());
    }
}
