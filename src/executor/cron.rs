//! Cron schedules for `{"cron": "…"}` triggers.
//!
//! Accepts what the server's cron parser accepts for triggers: five fields
//! (`minute hour day-of-month month day-of-week`) with `*`, lists, ranges, steps and month/weekday
//! names (`MON`, `JAN`), the descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`
//! and `@hourly`, and an optional time-zone prefix `TZ=Area/City ` or `CRON_TZ=Area/City `
//! (IANA names, resolved with `chrono-tz`). Without a prefix the schedule runs in UTC. When both
//! day-of-month and day-of-week are restricted, a day matching either fires (classic cron).
//!
//! Daylight-saving behaviour, for schedules in zones with DST:
//! * A local time skipped by a spring-forward transition fires at the first valid instant after
//!   the gap (e.g. `30 2 * * *` in `Europe/Paris` fires at 03:00 CEST on the transition day).
//! * A local time repeated by a fall-back transition fires once, at its first occurrence.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// How many times [`CronSchedule::next_after`] re-searches when a candidate maps to an instant that
/// is not after the requested time (possible inside a repeated fall-back hour).
const MAX_SEARCH_STEPS: usize = 1024;

/// Why a cron string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CronError {
    /// The string (after any time-zone prefix) was empty.
    #[error("invalid cron {cron:?}: empty schedule")]
    Empty {
        /// The full cron string.
        cron: String,
    },
    /// The `TZ=`/`CRON_TZ=` prefix named a zone that is not in the IANA database.
    #[error("invalid cron {cron:?}: unknown time zone {zone:?}")]
    UnknownTimeZone {
        /// The full cron string.
        cron: String,
        /// The zone name as written.
        zone: String,
    },
    /// The schedule itself is malformed.
    #[error("invalid cron {cron:?}: {reason}")]
    Invalid {
        /// The full cron string.
        cron: String,
        /// What is wrong with it.
        reason: String,
    },
}

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
        let trimmed = src.trim();
        let (tz, pattern) = split_tz(src, trimmed)?;
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err(CronError::Empty {
                cron: src.to_owned(),
            });
        }
        let invalid = |reason: String| CronError::Invalid {
            cron: src.to_owned(),
            reason,
        };
        if pattern.starts_with('@') {
            let known = [
                "@yearly",
                "@annually",
                "@monthly",
                "@weekly",
                "@daily",
                "@hourly",
            ];
            if !known.iter().any(|k| k.eq_ignore_ascii_case(pattern)) {
                return Err(invalid(format!(
                    "unknown descriptor {pattern:?} (use one of {})",
                    known.join(", ")
                )));
            }
        } else {
            let fields = pattern.split_whitespace().count();
            if fields != 5 {
                return Err(invalid(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
                )));
            }
        }
        // croner treats `?` as `*`; classic cron only allows it in the day fields, which is
        // where croner's own checks put it too.
        let cron = Cron::new(pattern)
            .parse()
            .map_err(|e| invalid(explain(pattern, &e)))?;
        Ok(CronSchedule {
            source: src.to_owned(),
            tz,
            cron,
        })
    }

    /// The cron string exactly as given to [`CronSchedule::parse`].
    #[allow(dead_code)] // crate-internal API; not every caller is built yet
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The time zone the schedule is evaluated in (UTC unless the string had a prefix).
    #[allow(dead_code)] // crate-internal API; not every caller is built yet
    pub(crate) fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first firing time strictly after `t`, or `None` if the schedule never fires again
    /// (for example `0 0 30 2 *`, February 30th).
    #[allow(dead_code)] // crate-internal API; not every caller is built yet
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = t.with_timezone(&self.tz);
        for _ in 0..MAX_SEARCH_STEPS {
            let candidate = self.cron.find_next_occurrence(&from, false).ok()?;
            let utc = candidate.with_timezone(&Utc);
            if utc > t {
                return Some(utc);
            }
            // Inside a repeated (fall-back) hour the local time after `t` can map to its first,
            // earlier occurrence; keep searching forward in local time.
            from = candidate;
        }
        None
    }
}

/// Checks a cron trigger string without keeping the result (used when validating a sync).
pub(crate) fn validate(src: &str) -> Result<(), CronError> {
    CronSchedule::parse(src).map(|_| ())
}

fn split_tz<'s>(src: &str, trimmed: &'s str) -> Result<(Tz, &'s str), CronError> {
    let rest = trimmed
        .strip_prefix("CRON_TZ=")
        .or_else(|| trimmed.strip_prefix("TZ="));
    let Some(rest) = rest else {
        return Ok((Tz::UTC, trimmed));
    };
    let (zone, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let tz = zone.parse::<Tz>().map_err(|_| CronError::UnknownTimeZone {
        cron: src.to_owned(),
        zone: zone.to_owned(),
    })?;
    Ok((tz, pattern))
}

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

/// Names the offending field of a five-field pattern by re-parsing each field on its own.
fn explain(pattern: &str, e: &croner::errors::CronError) -> String {
    const NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    if fields.len() == NAMES.len() {
        for (i, field) in fields.iter().enumerate() {
            let mut alone = ["*"; 5];
            alone[i] = field;
            if let Err(err) = Cron::new(&alone.join(" ")).parse() {
                return format!("{} field {field:?}: {}", NAMES[i], croner_reason(&err));
            }
        }
    }
    croner_reason(e)
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
