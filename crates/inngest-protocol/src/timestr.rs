//! Inngest "time strings": the duration format used throughout the protocol (`"2s"`, `"1h30m"`,
//! `"7d"`, `"300ms"`).
//!
//! * [`format()`] writes a [`Duration`] the way the official SDKs do: whole units from days down to
//!   seconds (`"1d"`, `"2h30m10s"`, `"1m30s"`), rounding any sub-second part **up**, so a non-zero
//!   duration never becomes `"0s"` (durable waits have a resolution of one second).
//! * [`format_go`] is the same without days, for fields the server reads with Go's
//!   `time.ParseDuration` (which has no `d` unit), such as `batchEvents.timeout`.
//! * [`parse`] reads the full grammar accepted by the server: decimal numbers (fractions allowed)
//!   each followed by a unit, concatenated (`"1h30m"`, `"1.5h"`, `"2w"`).
//! * [`parse_time_or_duration`] implements the rule the server applies to `Sleep` and to
//!   cancellation/invoke timeouts: a string that looks like a timestamp is an absolute time,
//!   anything else is a duration counted from "now".

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

const NANOS_PER_SEC: u128 = 1_000_000_000;
const SECS_PER_MINUTE: u64 = 60;
const SECS_PER_HOUR: u64 = 60 * SECS_PER_MINUTE;
const SECS_PER_DAY: u64 = 24 * SECS_PER_HOUR;

/// The longest duration [`parse`] accepts: the range of Go's `time.Duration` (`i64` nanoseconds,
/// about 292 years), since that is what the server stores durations in.
pub const MAX: Duration = Duration::new(9_223_372_036, 854_775_807);

/// Why a time string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeStrError {
    /// The string was empty.
    #[error("empty time string")]
    Empty,
    /// The string starts with a minus sign; Inngest durations cannot be negative.
    #[error("invalid time string {input:?}: negative durations are not allowed")]
    Negative {
        /// The string that was parsed.
        input: String,
    },
    /// A number was expected (for example a unit with no number before it, or a lone `.`).
    #[error("invalid time string {input:?}: expected a number at byte {position}")]
    InvalidNumber {
        /// The string that was parsed.
        input: String,
        /// Byte offset of the offending character.
        position: usize,
    },
    /// A number was not followed by a unit (`"10"`).
    #[error("invalid time string {input:?}: missing unit after {number:?} (use one of ns, us, µs, ms, s, m, h, d, w)")]
    MissingUnit {
        /// The string that was parsed.
        input: String,
        /// The number that had no unit.
        number: String,
    },
    /// A number was followed by something that is not a known unit (`"10y"`).
    #[error("invalid time string {input:?}: unknown unit {unit:?} (use one of ns, us, µs, ms, s, m, h, d, w)")]
    UnknownUnit {
        /// The string that was parsed.
        input: String,
        /// The unrecognised unit.
        unit: String,
    },
    /// The duration is longer than [`MAX`] (or the resulting time is out of range).
    #[error(
        "invalid time string {input:?}: duration out of range (the maximum is about 292 years)"
    )]
    Overflow {
        /// The string that was parsed.
        input: String,
    },
}

/// Formats a duration as an Inngest time string using the units `d`, `h`, `m` and `s`.
///
/// Whole units are written largest first and zero components are left out: `90s` becomes
/// `"1m30s"`, `86400s` becomes `"1d"`, `9010s` becomes `"2h30m10s"`. Any sub-second part is
/// rounded up to the next whole second, so `1ms` becomes `"1s"`; only [`Duration::ZERO`] formats
/// as `"0s"`.
pub fn format(d: Duration) -> String {
    format_units(d, true)
}

/// Formats a duration for fields the server parses with Go's `time.ParseDuration`, which has no
/// day unit (for example `batchEvents.timeout`): like [`format()`] but using only `h`, `m` and `s`
/// (`1d` becomes `"24h"`).
pub fn format_go(d: Duration) -> String {
    format_units(d, false)
}

fn format_units(d: Duration, with_days: bool) -> String {
    let mut secs = d.as_secs();
    if d.subsec_nanos() > 0 {
        // Round up; `Duration::MAX` has u64::MAX seconds, so saturate instead of overflowing.
        secs = secs.saturating_add(1);
    }
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut push = |value: u64, unit: char| {
        if value > 0 {
            out.push_str(&value.to_string());
            out.push(unit);
        }
    };
    if with_days {
        push(secs / SECS_PER_DAY, 'd');
        secs %= SECS_PER_DAY;
    }
    push(secs / SECS_PER_HOUR, 'h');
    secs %= SECS_PER_HOUR;
    push(secs / SECS_PER_MINUTE, 'm');
    push(secs % SECS_PER_MINUTE, 's');
    out
}

/// Nanoseconds in one of the accepted units.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as Go accepts both.
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        "w" => 7 * 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// Parses an Inngest time string into a [`Duration`].
///
/// Grammar: one or more `<number><unit>` pairs with nothing between them, where `<number>` is a
/// decimal number that may have a fraction (`1`, `1.5`, `.5`, `2.`) and `<unit>` is one of
/// `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d` (24 h) or `w` (7 d). Examples: `"300ms"`,
/// `"1h30m"`, `"1.5h"`, `"2w"`. A leading `+` is allowed; the bare string `"0"` is accepted as
/// zero (as Go does). Fractions are truncated to whole nanoseconds.
///
/// Rejected: the empty string, negative values, numbers without a unit, unknown units, and totals
/// above [`MAX`]. Whitespace is not allowed anywhere.
pub fn parse(s: &str) -> Result<Duration, TimeStrError> {
    if s.is_empty() {
        return Err(TimeStrError::Empty);
    }
    let input = || s.to_owned();
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('-') {
        // Only complain about the sign if what follows would otherwise be a duration, so that
        // "-" alone reads as a malformed number rather than a negative one.
        if r.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return Err(TimeStrError::Negative { input: input() });
        }
        return Err(TimeStrError::InvalidNumber {
            input: input(),
            position: 0,
        });
    }
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(TimeStrError::InvalidNumber {
            input: input(),
            position: s.len(),
        });
    }

    let max_nanos = MAX.as_nanos();
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let position = s.len() - rest.len();
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        // Optional fraction.
        let (frac_digits, after_num) = match after_int.strip_prefix('.') {
            Some(r) => {
                let frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(TimeStrError::InvalidNumber {
                input: input(),
                position,
            });
        }
        let number = &rest[..rest.len() - after_num.len()];
        // Unit: everything up to the next digit or '.'.
        let unit_len = after_num
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_num.len());
        let (unit, after_unit) = after_num.split_at(unit_len);
        if unit.is_empty() {
            return Err(TimeStrError::MissingUnit {
                input: input(),
                number: number.to_owned(),
            });
        }
        let per_unit = unit_nanos(unit).ok_or_else(|| TimeStrError::UnknownUnit {
            input: input(),
            unit: unit.to_owned(),
        })?;

        let overflow = || TimeStrError::Overflow { input: input() };
        // Integer part, exactly.
        let mut int_value: u128 = 0;
        for b in int_digits.bytes() {
            int_value = int_value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .filter(|v| *v <= max_nanos)
                .ok_or_else(overflow)?;
        }
        let mut nanos = int_value.checked_mul(per_unit).ok_or_else(overflow)?;
        // Fraction: keep up to 18 digits (more cannot change the nanosecond result of any unit
        // up to a week by more than rounding), then scale and truncate.
        if !frac_digits.is_empty() {
            let kept = &frac_digits[..frac_digits.len().min(18)];
            let frac_value: u128 = kept
                .bytes()
                .fold(0, |acc, b| acc * 10 + u128::from(b - b'0'));
            let scale = 10u128.pow(kept.len() as u32);
            nanos = nanos
                .checked_add(frac_value * per_unit / scale)
                .ok_or_else(overflow)?;
        }
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= max_nanos)
            .ok_or_else(overflow)?;
        rest = after_unit;
    }
    let secs = (total / NANOS_PER_SEC) as u64;
    let sub = (total % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, sub))
}

/// Parses a string that is either an absolute time or a duration from `now`, the rule the server
/// applies to `Sleep` (and to cancellation and invoke timeouts).
///
/// A string of at least 10 characters that parses as a timestamp is taken as an absolute time.
/// Accepted timestamp forms: RFC 3339 (`2024-06-10T09:00:00Z`, `2024-06-10T11:00:00.5+02:00`,
/// a space instead of `T` is also accepted), the same without an offset (read as UTC), and a bare
/// date `2024-06-10` (midnight UTC). Anything else is parsed with [`parse`] and added to `now`.
/// Absolute times in the past are returned as they are; callers treat them as "already due".
pub fn parse_time_or_duration(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeStrError> {
    if s.chars().count() >= 10 {
        if let Some(t) = parse_timestamp(s) {
            return Ok(t);
        }
    }
    let d = parse(s)?;
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| TimeStrError::Overflow {
            input: s.to_owned(),
        })
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn format_examples() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1s"),
            (Duration::from_millis(1), "1s"),
            (Duration::from_millis(999), "1s"),
            (Duration::from_millis(1000), "1s"),
            (Duration::from_millis(1001), "2s"),
            (Duration::from_millis(1500), "2s"),
            (secs(2), "2s"),
            (secs(59), "59s"),
            (secs(60), "1m"),
            (secs(90), "1m30s"),
            (secs(3600), "1h"),
            (secs(3601), "1h1s"),
            (secs(9010), "2h30m10s"),
            (secs(86_400), "1d"),
            (secs(86_401), "1d1s"),
            (secs(90_000), "1d1h"),
            (secs(7 * 86_400), "7d"),
            (secs(366 * 86_400), "366d"),
            (Duration::new(59, 1), "1m"),
            (Duration::new(3599, 500), "1h"),
        ];
        for (d, want) in cases {
            assert_eq!(format(*d), *want, "format({d:?})");
        }
    }

    #[test]
    fn format_go_examples() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_millis(10), "1s"),
            (secs(60), "1m"),
            (secs(86_400), "24h"),
            (secs(90_061), "25h1m1s"),
            (secs(3 * 86_400 + 5), "72h5s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go(*d), *want, "format_go({d:?})");
            assert!(!format_go(*d).contains('d'));
        }
    }

    #[test]
    fn format_huge_does_not_panic() {
        let s = format(Duration::MAX);
        assert!(s.ends_with('s') || s.ends_with('m') || s.ends_with('h') || s.ends_with('d'));
        let _ = format_go(Duration::MAX);
    }

    #[test]
    fn parse_examples() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("2s", secs(2)),
            ("+2s", secs(2)),
            ("90s", secs(90)),
            ("1m", secs(60)),
            ("1m30s", secs(90)),
            ("1h30m", secs(5400)),
            ("2h30m10s", secs(9010)),
            ("1.5h", secs(5400)),
            (".5s", Duration::from_millis(500)),
            ("2.s", secs(2)),
            ("300ms", Duration::from_millis(300)),
            ("1500us", Duration::from_micros(1500)),
            ("1500µs", Duration::from_micros(1500)),
            ("1500μs", Duration::from_micros(1500)),
            ("42ns", Duration::from_nanos(42)),
            ("1d", secs(86_400)),
            ("2w", secs(14 * 86_400)),
            ("1w1d1h1m1s", secs(8 * 86_400 + 3661)),
            ("1s1s", secs(2)),
            ("1h1h", secs(7200)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("0.0000000019s", Duration::from_nanos(1)),
            ("1.000000000000000000000001s", secs(1)),
            ("00012s", secs(12)),
            ("1ms1ns", Duration::from_nanos(1_000_001)),
            ("366d", secs(366 * 86_400)),
            ("2562047h", secs(2_562_047 * 3600)),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), Ok(*want), "parse({s:?})");
        }
    }

    #[test]
    fn parse_max() {
        assert_eq!(parse("9223372036854775807ns"), Ok(MAX));
        assert_eq!(parse("9223372036.854775807s"), Ok(MAX));
        assert!(matches!(
            parse("9223372036854775808ns"),
            Err(TimeStrError::Overflow { .. })
        ));
        assert!(matches!(
            parse("2562048h"),
            Err(TimeStrError::Overflow { .. })
        ));
        assert!(matches!(
            parse("99999999999999999999999999999999999999999s"),
            Err(TimeStrError::Overflow { .. })
        ));
        assert!(matches!(
            parse("9223372036854775807ns1ns"),
            Err(TimeStrError::Overflow { .. })
        ));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse(""), Err(TimeStrError::Empty));
        type Check = fn(&TimeStrError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("-1s", |e| matches!(e, TimeStrError::Negative { .. })),
            ("-.5s", |e| matches!(e, TimeStrError::Negative { .. })),
            ("-", |e| matches!(e, TimeStrError::InvalidNumber { .. })),
            ("+", |e| matches!(e, TimeStrError::InvalidNumber { .. })),
            ("10", |e| matches!(e, TimeStrError::MissingUnit { .. })),
            ("1.5", |e| matches!(e, TimeStrError::MissingUnit { .. })),
            ("1h30", |e| matches!(e, TimeStrError::MissingUnit { .. })),
            ("10y", |e| matches!(e, TimeStrError::UnknownUnit { .. })),
            ("10 s", |e| matches!(e, TimeStrError::UnknownUnit { .. })),
            ("10S", |e| matches!(e, TimeStrError::UnknownUnit { .. })),
            ("10sec", |e| matches!(e, TimeStrError::UnknownUnit { .. })),
            ("1hh", |e| matches!(e, TimeStrError::UnknownUnit { .. })),
            ("s", |e| matches!(e, TimeStrError::InvalidNumber { .. })),
            (".s", |e| matches!(e, TimeStrError::InvalidNumber { .. })),
            ("1s.", |e| matches!(e, TimeStrError::InvalidNumber { .. })),
            ("1..5s", |e| matches!(e, TimeStrError::MissingUnit { .. })),
            (" 1s", |e| matches!(e, TimeStrError::InvalidNumber { .. })),
            ("1s ", |e| matches!(e, TimeStrError::UnknownUnit { .. })),
            ("00", |e| matches!(e, TimeStrError::MissingUnit { .. })),
        ];
        for (s, check) in cases {
            let err = parse(s).expect_err(s);
            assert!(check(&err), "parse({s:?}) gave {err:?}");
            // Every message names the input.
            assert!(err.to_string().contains(&format!("{s:?}")), "{err}");
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            parse("10y").unwrap_err().to_string(),
            "invalid time string \"10y\": unknown unit \"y\" (use one of ns, us, µs, ms, s, m, h, d, w)"
        );
        assert_eq!(
            parse("10").unwrap_err().to_string(),
            "invalid time string \"10\": missing unit after \"10\" (use one of ns, us, µs, ms, s, m, h, d, w)"
        );
        assert_eq!(
            parse("-5s").unwrap_err().to_string(),
            "invalid time string \"-5s\": negative durations are not allowed"
        );
        assert_eq!(parse("").unwrap_err().to_string(), "empty time string");
    }

    #[test]
    fn round_trip_whole_seconds() {
        // Dense near the unit boundaries, then a spread over large values.
        let mut values: Vec<u64> = (0..=5000).collect();
        for base in [
            SECS_PER_MINUTE,
            SECS_PER_HOUR,
            SECS_PER_DAY,
            7 * SECS_PER_DAY,
        ] {
            for k in 1..=50u64 {
                for delta in [0, 1, 59, 60, 61, 3599, 3600, 3601] {
                    values.push(base * k + delta);
                    values.push((base * k).saturating_sub(delta));
                }
            }
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // xorshift for a deterministic pseudo-random spread up to ~300 years.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % (300 * 365 * SECS_PER_DAY));
        }
        for v in values {
            let d = secs(v);
            if d > MAX {
                assert!(parse(&format(d)).is_err());
                continue;
            }
            assert_eq!(parse(&format(d)), Ok(d), "format = {}", format(d));
            assert_eq!(parse(&format_go(d)), Ok(d), "format_go = {}", format_go(d));
        }
    }

    #[test]
    fn round_trip_sub_second_rounds_up() {
        for ms in 0..5000u64 {
            let d = Duration::from_millis(ms);
            let back = parse(&format(d)).unwrap();
            let expected = secs(ms.div_ceil(1000));
            assert_eq!(back, expected, "{ms}ms -> {}", format(d));
            assert!(back >= d);
            if ms > 0 {
                assert!(back >= secs(1));
            }
        }
    }

    #[test]
    fn round_trip_parse_then_format() {
        // Canonical strings survive parse → format unchanged.
        for d in 0..30u64 {
            for h in [0u64, 1, 5, 23] {
                for m in [0u64, 1, 30, 59] {
                    for s in [0u64, 1, 10, 59] {
                        let mut canon = String::new();
                        for (v, u) in [(d, 'd'), (h, 'h'), (m, 'm'), (s, 's')] {
                            if v > 0 {
                                canon.push_str(&format!("{v}{u}"));
                            }
                        }
                        if canon.is_empty() {
                            canon.push_str("0s");
                        }
                        assert_eq!(format(parse(&canon).unwrap()), canon);
                    }
                }
            }
        }
    }

    #[test]
    fn time_or_duration() {
        let now = Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap();
        assert_eq!(
            parse_time_or_duration("2s", now),
            Ok(now + chrono::Duration::seconds(2))
        );
        assert_eq!(
            parse_time_or_duration("1h30m", now),
            Ok(now + chrono::Duration::minutes(90))
        );
        // 10+ characters but a duration, not a date.
        assert_eq!(
            parse_time_or_duration("1h30m10s5ms", now),
            Ok(now + chrono::Duration::milliseconds(5_410_005))
        );
        assert_eq!(
            parse_time_or_duration("2024-06-10T09:00:00Z", now),
            Ok(Utc.with_ymd_and_hms(2024, 6, 10, 9, 0, 0).unwrap())
        );
        assert_eq!(
            parse_time_or_duration("2024-06-10T11:00:00+02:00", now),
            Ok(Utc.with_ymd_and_hms(2024, 6, 10, 9, 0, 0).unwrap())
        );
        assert_eq!(
            parse_time_or_duration("2024-06-10T09:00:00.250Z", now),
            Ok(Utc.with_ymd_and_hms(2024, 6, 10, 9, 0, 0).unwrap()
                + chrono::Duration::milliseconds(250))
        );
        assert_eq!(
            parse_time_or_duration("2024-06-10T09:00:00", now),
            Ok(Utc.with_ymd_and_hms(2024, 6, 10, 9, 0, 0).unwrap())
        );
        assert_eq!(
            parse_time_or_duration("2024-06-10", now),
            Ok(Utc.with_ymd_and_hms(2024, 6, 10, 0, 0, 0).unwrap())
        );
        // Past times are returned unchanged.
        assert_eq!(
            parse_time_or_duration("2000-01-01T00:00:00Z", now),
            Ok(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap())
        );
        assert!(matches!(
            parse_time_or_duration("2024-13-10T09:00:00Z", now),
            Err(TimeStrError::InvalidNumber { .. } | TimeStrError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_time_or_duration("soon", now),
            Err(TimeStrError::InvalidNumber { .. })
        ));
        assert_eq!(parse_time_or_duration("", now), Err(TimeStrError::Empty));
    }
}
