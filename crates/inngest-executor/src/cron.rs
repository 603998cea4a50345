//! Cron schedules for `{"cron": "…"}` triggers.
//!
//! Accepts what the server's cron parser accepts for triggers: five fields
//! (`minute hour day-of-month month day-of-week`) with `*`, lists, ranges, steps and month/weekday
//! names (`MON`, `JAN`), the descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`
//! and `@hourly`, and an optional time-zone prefix `TZ=Area/City ` or `CRON_TZ=Area/City `
//! (IANA names, resolved with `chrono-tz`). Without a prefix the schedule runs in UTC. When both
//! day-of-month and day-of-week are restricted, a day matching either fires (classic cron).
//! The exact syntax, and where it differs from the server's parser, is documented on the
//! protocol crate's dependency-free checker (`inngest_protocol::cron`), which [`CronSchedule::parse`]
//! runs first: the SDK and the executor therefore accept the same strings and report the same
//! errors, except that only the executor knows which time zones exist.
//!
//! Daylight-saving behaviour, for schedules in zones with DST:
//! * A local time skipped by a spring-forward transition fires at the first valid instant after
//!   the gap (e.g. `30 2 * * *` in `Europe/Paris` fires at 03:00 CEST on the transition day).
//! * A local time repeated by a fall-back transition fires once, at its first occurrence.

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

pub(crate) use inngest_protocol::cron::CronError;

/// How many times [`CronSchedule::next_after`] re-searches when a candidate maps to an instant that
/// is not after the requested time (possible inside a repeated fall-back hour).
const MAX_SEARCH_STEPS: usize = 1024;

/// The longest spring-forward gap searched for its end (two days; the longest on record is
/// Samoa's skipped 30 December 2011).
const MAX_GAP_MINUTES: i32 = 2 * 24 * 60;

/// A parsed cron schedule: a pattern plus the time zone it is evaluated in.
#[derive(Debug, Clone)]
pub(crate) struct CronSchedule {
    source: String,
    tz: Tz,
    cron: Cron,
}

impl CronSchedule {
    /// Parses a cron trigger string such as `"0 9 * * 1"` or `"TZ=Europe/Paris 0 9 * * 1"`.
    pub(crate) fn parse(src: &str) -> Result<CronSchedule, CronError> {
        let (zone, pattern) = inngest_protocol::cron::split_time_zone(src);
        let tz = match zone {
            None => Tz::UTC,
            Some(zone) => zone.parse::<Tz>().map_err(|_| CronError::UnknownTimeZone {
                cron: src.to_owned(),
                zone: zone.to_owned(),
            })?,
        };
        // The syntax check decides what is accepted (and words the errors); croner only builds
        // the schedule. It cannot fail here: the differential tests of `inngest_protocol::cron` show that
        // croner, configured by `parser`, accepts everything `validate` does.
        inngest_protocol::cron::validate(src)?;
        let cron = parser().parse(pattern).map_err(|e| CronError::Invalid {
            cron: src.to_owned(),
            reason: croner_reason(&e),
        })?;
        Ok(CronSchedule {
            source: src.to_owned(),
            tz,
            cron,
        })
    }

    /// The cron string exactly as given to [`CronSchedule::parse`].
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The time zone the schedule is evaluated in (UTC unless the string had a prefix).
    #[cfg(test)]
    fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first firing time strictly after `t`, or `None` if the schedule never fires again
    /// (for example `0 0 30 2 *`, February 30th).
    ///
    /// croner only searches wall-clock time here; this module maps each wall-clock match to an
    /// instant itself (see [`first_instant`]), which is what gives the DST behaviour described
    /// in the module docs. (croner 4's own zone-aware search differs: it fires interval jobs
    /// such as `*/15 * * * *` in both passes of a repeated hour, and skips, rather than
    /// delays, their runs that fall in a gap.)
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A minute or hour field of only commas (`, * * * *`) selects nothing; croner would
        // search minute by minute until its year limit (seconds of CPU) to find that out.
        let pattern = &self.cron.pattern;
        if pattern.minutes.values().is_empty() || pattern.hours.values().is_empty() {
            return None;
        }
        let mut from = t.with_timezone(&self.tz).naive_local();
        for _ in 0..MAX_SEARCH_STEPS {
            let local = self.cron.find_next_occurrence(&from, false).ok()?;
            let candidate = first_instant(self.tz, local)?;
            let utc = candidate.with_timezone(&Utc);
            if utc > t {
                return Some(utc);
            }
            // Inside a repeated (fall-back) hour the local time after `t` maps to its first,
            // earlier occurrence; keep searching forward in local time.
            from = candidate.naive_local();
        }
        None
    }
}

/// The instant a wall-clock firing time stands for in `tz`: the time itself when it exists
/// once, its first occurrence when a fall-back transition repeats it, and the end of the gap
/// (the first valid instant after it) when a spring-forward transition skips it.
fn first_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    let exists = |local: NaiveDateTime| tz.from_local_datetime(&local).earliest();
    if let Some(instant) = exists(local) {
        return Some(instant);
    }
    // A gap is one interval of wall-clock time: find its end a minute at a time, then back up
    // to the second (transitions in old LMT offsets are not on whole minutes).
    let minute = TimeDelta::minutes(1);
    let second = TimeDelta::seconds(1);
    let mut end = (1..=MAX_GAP_MINUTES)
        .map(|i| local + minute * i)
        .find(|&t| exists(t).is_some())?;
    while end - second > local && exists(end - second).is_some() {
        end -= second;
    }
    exists(end)
}

/// Checks a cron trigger string without keeping the result.
#[cfg(test)]
fn validate(src: &str) -> Result<(), CronError> {
    CronSchedule::parse(src).map(|_| ())
}

/// croner configured for trigger schedules: exactly five fields (no seconds, no year), and
/// `a/n` read as `a-max/n` like the server and croner 2 did (croner 4 rejects it by default).
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build()
}

/// croner's error as a reason, in case it ever rejects what the syntax check let through.
fn croner_reason(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let message = match e {
        E::EmptyPattern => "empty schedule".to_owned(),
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    };
    let message = message.trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "invalid schedule".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next(src: &str, t: DateTime<Utc>) -> DateTime<Utc> {
        CronSchedule::parse(src).unwrap().next_after(t).unwrap()
    }

    /// The next `n` firing times after `t`.
    fn series(src: &str, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let s = CronSchedule::parse(src).unwrap();
        let mut out = Vec::new();
        let mut cur = t;
        for _ in 0..n {
            cur = s.next_after(cur).unwrap();
            out.push(cur);
        }
        out
    }

    #[test]
    fn daily_at_two() {
        let t = utc(2024, 6, 1, 12, 0, 0);
        assert_eq!(next("0 2 * * *", t), utc(2024, 6, 2, 2, 0, 0));
        assert_eq!(
            next("0 2 * * *", utc(2024, 6, 1, 1, 59, 59)),
            utc(2024, 6, 1, 2, 0, 0)
        );
        // Strictly after: a time exactly on the schedule moves to the next day.
        assert_eq!(
            next("0 2 * * *", utc(2024, 6, 1, 2, 0, 0)),
            utc(2024, 6, 2, 2, 0, 0)
        );
        // Sub-second after the firing time.
        let just_after = utc(2024, 6, 1, 2, 0, 0) + chrono::Duration::milliseconds(1);
        assert_eq!(next("0 2 * * *", just_after), utc(2024, 6, 2, 2, 0, 0));
        let just_before = utc(2024, 6, 1, 2, 0, 0) - chrono::Duration::milliseconds(1);
        assert_eq!(next("0 2 * * *", just_before), utc(2024, 6, 1, 2, 0, 0));
    }

    #[test]
    fn weekly_and_monthly() {
        // 2024-06-01 is a Saturday.
        let t = utc(2024, 6, 1, 12, 0, 0);
        let mon = next("0 3 * * 1", t);
        assert_eq!(mon, utc(2024, 6, 3, 3, 0, 0));
        assert_eq!(mon.weekday(), Weekday::Mon);
        let sun = next("0 4 * * 0", t);
        assert_eq!(sun, utc(2024, 6, 2, 4, 0, 0));
        assert_eq!(sun.weekday(), Weekday::Sun);
        // 7 is Sunday too.
        assert_eq!(next("0 4 * * 7", t), sun);
        assert_eq!(next("0 4 * * SUN", t), sun);
        assert_eq!(
            next("0 5 1 * *", utc(2024, 6, 1, 0, 0, 0)),
            utc(2024, 6, 1, 5, 0, 0)
        );
        assert_eq!(next("0 5 1 * *", t), utc(2024, 7, 1, 5, 0, 0));
        assert_eq!(
            next("0 5 1 * *", utc(2024, 6, 1, 5, 0, 0)),
            utc(2024, 7, 1, 5, 0, 0)
        );
        assert_eq!(
            series("0 5 1 * *", utc(2024, 11, 15, 0, 0, 0), 3),
            vec![
                utc(2024, 12, 1, 5, 0, 0),
                utc(2025, 1, 1, 5, 0, 0),
                utc(2025, 2, 1, 5, 0, 0)
            ]
        );
        for d in series("0 3 * * 1", t, 10) {
            assert_eq!(d.weekday(), Weekday::Mon);
            assert_eq!((d.hour(), d.minute(), d.second()), (3, 0, 0));
        }
    }

    #[test]
    fn every_fifteen_minutes() {
        let t = utc(2024, 6, 1, 12, 7, 30);
        assert_eq!(
            series("*/15 * * * *", t, 5),
            vec![
                utc(2024, 6, 1, 12, 15, 0),
                utc(2024, 6, 1, 12, 30, 0),
                utc(2024, 6, 1, 12, 45, 0),
                utc(2024, 6, 1, 13, 0, 0),
                utc(2024, 6, 1, 13, 15, 0),
            ]
        );
        assert_eq!(
            next("* * * * *", utc(2024, 6, 1, 12, 0, 0)),
            utc(2024, 6, 1, 12, 1, 0)
        );
    }

    #[test]
    fn lists_ranges_names_and_descriptors() {
        let t = utc(2024, 6, 1, 12, 0, 0); // Saturday
        assert_eq!(next("0 9-17/4 * * MON-FRI", t), utc(2024, 6, 3, 9, 0, 0));
        assert_eq!(next("30 8,20 * * *", t), utc(2024, 6, 1, 20, 30, 0));
        assert_eq!(next("0 0 1 JAN *", t), utc(2025, 1, 1, 0, 0, 0));
        assert_eq!(next("@daily", t), utc(2024, 6, 2, 0, 0, 0));
        assert_eq!(next("@hourly", t), utc(2024, 6, 1, 13, 0, 0));
        assert_eq!(next("@weekly", t), utc(2024, 6, 2, 0, 0, 0));
        assert_eq!(next("@monthly", t), utc(2024, 7, 1, 0, 0, 0));
        assert_eq!(next("@yearly", t), utc(2025, 1, 1, 0, 0, 0));
        // Day-of-month OR day-of-week when both are restricted: the 15th or any Monday.
        assert_eq!(next("0 0 15 * 1", t), utc(2024, 6, 3, 0, 0, 0));
        assert_eq!(
            next("0 0 15 * 1", utc(2024, 6, 11, 0, 0, 0)),
            utc(2024, 6, 15, 0, 0, 0)
        );
        // Leap day.
        assert_eq!(next("0 0 29 2 *", t), utc(2028, 2, 29, 0, 0, 0));
    }

    #[test]
    fn never_fires() {
        let s = CronSchedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next_after(utc(2024, 1, 1, 0, 0, 0)), None);
    }

    #[test]
    fn time_zone_prefix() {
        let s = CronSchedule::parse("TZ=Europe/Paris 0 9 * * 1").unwrap();
        assert_eq!(s.source(), "TZ=Europe/Paris 0 9 * * 1");
        assert_eq!(s.time_zone(), chrono_tz::Europe::Paris);
        // Summer (CEST, UTC+2): Monday 2024-06-03 09:00 Paris = 07:00 UTC.
        assert_eq!(
            s.next_after(utc(2024, 6, 1, 0, 0, 0)),
            Some(utc(2024, 6, 3, 7, 0, 0))
        );
        // Winter (CET, UTC+1): Monday 2024-01-08 09:00 Paris = 08:00 UTC.
        assert_eq!(
            s.next_after(utc(2024, 1, 6, 0, 0, 0)),
            Some(utc(2024, 1, 8, 8, 0, 0))
        );
        // Across the spring-forward transition (Sunday 2024-03-31).
        assert_eq!(
            series("TZ=Europe/Paris 0 9 * * 1", utc(2024, 3, 20, 0, 0, 0), 3),
            vec![
                utc(2024, 3, 25, 8, 0, 0),
                utc(2024, 4, 1, 7, 0, 0),
                utc(2024, 4, 8, 7, 0, 0)
            ]
        );
        // Across the fall-back transition (Sunday 2024-10-27).
        assert_eq!(
            series("TZ=Europe/Paris 0 9 * * 1", utc(2024, 10, 20, 0, 0, 0), 2),
            vec![utc(2024, 10, 21, 7, 0, 0), utc(2024, 10, 28, 8, 0, 0)]
        );
        for d in series(
            "CRON_TZ=America/New_York 0 9 * * *",
            utc(2024, 3, 1, 0, 0, 0),
            60,
        ) {
            let local = d.with_timezone(&chrono_tz::America::New_York);
            assert_eq!((local.hour(), local.minute()), (9, 0), "{d}");
        }
        assert_eq!(
            next("CRON_TZ=Asia/Kolkata 30 0 * * *", utc(2024, 6, 1, 0, 0, 0)),
            utc(2024, 6, 1, 19, 0, 0)
        );
        assert_eq!(
            next("TZ=UTC 0 2 * * *", utc(2024, 6, 1, 12, 0, 0)),
            utc(2024, 6, 2, 2, 0, 0)
        );
    }

    #[test]
    fn dst_gap_and_repeat() {
        // 02:30 does not exist in Paris on 2024-03-31: it fires at 03:00 CEST (01:00 UTC).
        let s = CronSchedule::parse("TZ=Europe/Paris 30 2 * * *").unwrap();
        assert_eq!(
            s.next_after(utc(2024, 3, 30, 12, 0, 0)),
            Some(utc(2024, 3, 31, 1, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2024, 3, 31, 1, 0, 0)),
            Some(utc(2024, 4, 1, 0, 30, 0))
        );
        // 02:30 happens twice on 2024-10-27; it fires once, at the first (CEST, 00:30 UTC).
        assert_eq!(
            s.next_after(utc(2024, 10, 26, 12, 0, 0)),
            Some(utc(2024, 10, 27, 0, 30, 0))
        );
        assert_eq!(
            s.next_after(utc(2024, 10, 27, 0, 30, 0)),
            Some(utc(2024, 10, 28, 1, 30, 0))
        );
        // Inside the repeated hour (02:15 CET = 01:15 UTC), the next quarter-hour is not allowed to
        // go back to the first pass: results are strictly increasing.
        let q = CronSchedule::parse("TZ=Europe/Paris */15 * * * *").unwrap();
        let mut cur = utc(2024, 10, 26, 23, 50, 0);
        let mut seen = Vec::new();
        for _ in 0..20 {
            let n = q.next_after(cur).unwrap();
            assert!(n > cur, "{n} is not after {cur}");
            seen.push(n);
            cur = n;
        }
        assert_eq!(
            q.next_after(utc(2024, 10, 27, 1, 15, 0)),
            Some(utc(2024, 10, 27, 2, 0, 0))
        );
        // Every result is on a quarter hour.
        assert!(seen.iter().all(|d| d.minute() % 15 == 0 && d.second() == 0));
    }

    #[test]
    fn invalid() {
        let cases = [
            "",
            "   ",
            "* * * *",
            "* * * * * *",
            "0 0 0 * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 32 * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "a b c d e",
            "*/0 * * * *",
            "5-1 * * * *",
            "@every 5m",
            "@reboot",
            "TZ=Mars/Olympus 0 9 * * 1",
            "TZ=Europe/Paris",
            "TZ= 0 9 * * 1",
            "CRON_TZ=Nowhere 0 0 * * *",
        ];
        for c in cases {
            let err = CronSchedule::parse(c).expect_err(c);
            assert!(err.to_string().contains(&format!("{c:?}")), "{c:?}: {err}");
            assert!(validate(c).is_err());
        }
        assert!(matches!(
            CronSchedule::parse("TZ=Mars/Olympus 0 9 * * 1"),
            Err(CronError::UnknownTimeZone { zone, .. }) if zone == "Mars/Olympus"
        ));
        assert!(matches!(
            CronSchedule::parse("TZ=Europe/Paris"),
            Err(CronError::Empty { .. })
        ));
        assert!(matches!(
            CronSchedule::parse("* * * *"),
            Err(CronError::Invalid { .. })
        ));
    }

    #[test]
    fn invalid_messages_name_the_field() {
        assert_eq!(
            CronSchedule::parse("0 24 * * *").unwrap_err().to_string(),
            "invalid cron \"0 24 * * *\": hour field \"24\": number out of bounds"
        );
        assert_eq!(
            CronSchedule::parse("0 0 * * MON-XYZ")
                .unwrap_err()
                .to_string(),
            "invalid cron \"0 0 * * MON-XYZ\": day-of-week field \"MON-XYZ\": invalid end of range"
        );
        assert_eq!(
            CronSchedule::parse("* * * *").unwrap_err().to_string(),
            "invalid cron \"* * * *\": expected 5 fields (minute hour day-of-month month day-of-week), found 4"
        );
    }

    #[test]
    fn valid() {
        for c in [
            "0 2 * * *",
            "0 3 * * 1",
            "0 4 * * 0",
            "0 5 1 * *",
            "*/15 * * * *",
            " 0 2 * * * ",
            "0 0 ? * MON",
            "0,30 9-17 * * 1-5",
            "TZ=Europe/Paris 0 9 * * 1",
            "CRON_TZ=America/Los_Angeles 0 9 * * 1",
            "@daily",
        ] {
            assert_eq!(validate(c), Ok(()), "{c}");
            assert!(CronSchedule::parse(c)
                .unwrap()
                .next_after(utc(2024, 1, 1, 0, 0, 0))
                .is_some());
        }
    }
}

/// Checks beyond the original module's tests: the port keeps croner 2's firing times, and every
/// zone chrono-tz knows passes the protocol crate's zone-name check.
#[cfg(test)]
mod port_tests {
    use super::*;
    use chrono::TimeZone;

    /// The original module's `next_after`, on croner 2.2.
    fn next_after_croner2(src: &str, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (zone, pattern) = inngest_protocol::cron::split_time_zone(src);
        let tz: Tz = zone.map_or(Tz::UTC, |z| z.parse().unwrap());
        let cron = croner2::Cron::new(pattern).parse().unwrap();
        let mut from = t.with_timezone(&tz);
        for _ in 0..MAX_SEARCH_STEPS {
            let candidate = cron.find_next_occurrence(&from, false).ok()?;
            let utc = candidate.with_timezone(&Utc);
            if utc > t {
                return Some(utc);
            }
            from = candidate;
        }
        None
    }

    /// A calendar day: year, month, day.
    type Day = (i32, u32, u32);

    /// Days with a DST transition (or none) in each zone, as UTC midnights.
    const ZONES: [(&str, [Day; 2]); 6] = [
        ("Europe/Paris", [(2024, 3, 31), (2024, 10, 27)]),
        ("America/New_York", [(2024, 3, 10), (2024, 11, 3)]),
        ("Australia/Lord_Howe", [(2024, 4, 6), (2024, 10, 5)]), // 30-minute shift
        ("Pacific/Chatham", [(2024, 4, 6), (2024, 9, 28)]),     // offsets of 12:45 / 13:45
        ("America/Santiago", [(2024, 4, 6), (2024, 9, 7)]),     // transitions at midnight
        ("Asia/Kolkata", [(2024, 3, 31), (2024, 10, 27)]),      // no DST
    ];

    #[test]
    fn firing_times_match_croner2_around_transitions() {
        let patterns = [
            "30 2 * * *",
            "0 2 * * *",
            "0 3 * * *",
            "59 1 * * *",
            "*/15 * * * *",
            "30 * * * *",
            "5-55/10 * * * *",
            "* * * * *",
            "0 * * * *",
            "45 0 * * *",
            "0 0 * * *",
            "15 1-3 * * *",
            "*/7 2 * * *",
            "0 0 * * 0",
            "@hourly",
            "@daily",
        ];
        let mut compared = 0;
        for (zone, days) in ZONES {
            for pattern in patterns {
                let src = format!("TZ={zone} {pattern}");
                let schedule = CronSchedule::parse(&src).unwrap();
                for (y, m, d) in days {
                    let mut t =
                        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap() - TimeDelta::hours(14);
                    let end = t + TimeDelta::hours(40);
                    while t < end {
                        assert_eq!(
                            schedule.next_after(t),
                            next_after_croner2(&src, t),
                            "{src} after {t}"
                        );
                        compared += 1;
                        t += TimeDelta::minutes(7);
                    }
                }
            }
        }
        assert!(compared > 30_000, "{compared}");
    }

    #[test]
    fn gap_delays_interval_runs_like_croner2() {
        // 02:30 does not exist in Paris on 2024-03-31; `30 * * * *` runs at 03:00 CEST instead
        // (croner 4's own zone-aware search would skip it and run at 03:30).
        let s = CronSchedule::parse("TZ=Europe/Paris 30 * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2024, 3, 31, 0, 30, 0).unwrap(); // 01:30 CET
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2024, 3, 31, 1, 0, 0).unwrap())
        );
        // Samoa skipped 30 December 2011 entirely; croner 2 gave up on gaps over an hour.
        let s = CronSchedule::parse("TZ=Pacific/Apia 0 12 * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2011, 12, 29, 23, 0, 0).unwrap(); // 29th 13:00 local
        let apia = chrono_tz::Pacific::Apia;
        let want = apia.with_ymd_and_hms(2011, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(s.next_after(t), Some(want.with_timezone(&Utc)));
    }

    #[test]
    fn selects_nothing_quickly() {
        let t = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        for src in [
            ", * * * *",
            "0 ,, * * *",
            "0 0 , * *",
            "0 0 * , *",
            "0 0 , * ,",
        ] {
            assert_eq!(
                CronSchedule::parse(src).unwrap().next_after(t),
                None,
                "{src}"
            );
        }
    }

    #[test]
    fn every_known_zone_passes_the_syntax_check() {
        for tz in chrono_tz::TZ_VARIANTS {
            let src = format!("TZ={} 0 9 * * 1", tz.name());
            assert_eq!(inngest_protocol::cron::validate(&src), Ok(()), "{src}");
            assert_eq!(CronSchedule::parse(&src).unwrap().time_zone(), tz);
        }
        // Well-formed but unknown: only the executor can tell.
        assert_eq!(
            inngest_protocol::cron::validate("TZ=Mars/Olympus 0 9 * * 1"),
            Ok(())
        );
        assert!(matches!(
            validate("TZ=Mars/Olympus 0 9 * * 1"),
            Err(CronError::UnknownTimeZone { zone, .. }) if zone == "Mars/Olympus"
        ));
        // Zone errors come first, as before: an unknown zone with no schedule is not "empty".
        assert!(matches!(
            validate("TZ=Mars/Olympus"),
            Err(CronError::UnknownTimeZone { .. })
        ));
    }
}
