//! Syntax check for `{"cron": "…"}` triggers, with no dependencies beyond `std` and `thiserror`.
//!
//! # Why this is hand-written
//!
//! The protocol crate must stay free of the executor's schedule crates (`croner` and
//! `chrono-tz`), yet the SDK wants to reject a bad cron string when a function is defined, not
//! when the server or the executor first sees it. So this module re-implements only the *parse*
//! side: it checks syntax and value ranges and computes nothing. The executor calls
//! [`validate`] first and then builds the real schedule with `croner` (resolving the zone with
//! `chrono-tz`), so both report the same errors for the same string.
//!
//! # What is accepted
//!
//! Exactly what the executor accepts (a differential test against its `croner` parser checks
//! this on some 40,000 generated strings), except for the time zone: without a tz database
//! this module only checks the zone name's *shape*, so `TZ=Mars/Olympus 0 9 * * *` passes here
//! and fails in the executor with [`CronError::UnknownTimeZone`].
//!
//! * An optional prefix `TZ=Area/City ` or `CRON_TZ=Area/City ` (case-sensitive). The name must
//!   look like an IANA name: segments of ASCII letters, digits, `_`, `-` and `+` separated by
//!   single `/`s (`UTC`, `Etc/GMT+5`, `America/Argentina/Buenos_Aires`, `EST5EDT`).
//! * Then a descriptor (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@hourly`, any
//!   case) or five whitespace-separated fields: minute (0-59), hour (0-23), day-of-month
//!   (1-31), month (1-12), day-of-week (0-7, 0 and 7 are Sunday).
//! * In a field: `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the
//!   field's maximum), and comma lists of those. Month names `JAN`-`DEC` and weekday names
//!   `SUN`-`SAT` are case-insensitive. `?` means `*` in the two day fields.
//! * Quartz-style extras, in the day fields only: `L` (last day of the month), `nW` (weekday
//!   nearest the n-th) and `LW` in day-of-month; `nL` (last n-day of the month) and `n#k` (k-th
//!   n-day, k = 1-5) in day-of-week.
//!
//! # Divergences from the server's parser
//!
//! The Inngest server parses triggers with Go's robfig/cron standard parser. Where `croner`
//! and robfig/cron disagree, this module follows the executor (`croner`):
//!
//! 1. `L`, `W`, `LW`, `nL` and `n#k` are accepted; robfig/cron rejects them.
//! 2. Day-of-week `7` (Sunday) is accepted; robfig/cron allows only 0-6.
//! 3. Names are replaced as text anywhere in the string: `JAN` in the minute field means 1,
//!    `MONL` is "last Monday", and a range ending in `SUN` ends at 7, so `MON-SUN` is every
//!    day; robfig/cron allows names only in their own field and rejects `MON-SUN` as reversed.
//! 4. `*` cannot be part of a list or range (`*,5`, `*-5`); robfig/cron accepts both (and
//!    ignores the `-5`).
//! 5. `?` is only allowed in the day fields; robfig/cron allows it in every field.
//! 6. Numbers and steps must fit in 16 bits (`*/70000` is rejected); robfig/cron takes any
//!    `int`.
//! 7. `@every <duration>`, `@midnight` and `@reboot` are rejected; robfig/cron accepts the first
//!    two.
//! 8. `TZ=` with an empty zone is rejected; Go reads it as UTC.
//!
//! Both accept steps larger than the field (`*/100` is just `0`) and `a/n` (`a` to the maximum).
//! Empty list items are skipped (`1,,2`, `5,`), so a field of only commas is accepted and
//! never matches; the executor returns no next time for it.
//!
//! # Where this module is stricter than `croner` 4
//!
//! These are refused here although the executor's `croner` would parse them; the executor runs
//! this check first, so it refuses them too:
//!
//! 1. A sign (`+5`). robfig/cron and `croner` 2 read `+5` as 5, but `croner` 4 reads a leading
//!    `+` in day-of-week as "day-of-month AND day-of-week" and rejects it elsewhere.
//! 2. A step without a start (`/5`). The executor's `croner` is configured to accept `a/n`,
//!    which also lets `/n` through; robfig/cron and `croner` 2 reject it.
//! 3. Non-ASCII letters: only ASCII is case-folded, so `ſun` is not `SUN` (`croner` 4 upper-cases
//!    with Unicode rules and would accept it; robfig/cron and `croner` 2 reject it).

#![warn(missing_docs)]

/// Why a cron string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The string (after any time-zone prefix) was empty.
    #[error("invalid cron {cron:?}: empty schedule")]
    Empty {
        /// The full cron string.
        cron: String,
    },
    /// The `TZ=`/`CRON_TZ=` prefix named a zone that is malformed (or, in the executor, not in
    /// the IANA database).
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
        /// What is wrong with it; for a bad field it starts with the field's name, as in
        /// `minute field "61": number out of bounds`.
        reason: String,
    },
}

/// The descriptors accepted instead of five fields (compared case-insensitively).
const DESCRIPTORS: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// Name replacements in the order `croner` applies them to the upper-cased text. `-SUN` comes
/// first so that a range can end on Sunday (`MON-SUN` is `1-7`).
const NAMES: [(&str, &str); 20] = [
    ("-SUN", "-7"),
    ("SUN", "0"),
    ("MON", "1"),
    ("TUE", "2"),
    ("WED", "3"),
    ("THU", "4"),
    ("FRI", "5"),
    ("SAT", "6"),
    ("JAN", "1"),
    ("FEB", "2"),
    ("MAR", "3"),
    ("APR", "4"),
    ("MAY", "5"),
    ("JUN", "6"),
    ("JUL", "7"),
    ("AUG", "8"),
    ("SEP", "9"),
    ("OCT", "10"),
    ("NOV", "11"),
    ("DEC", "12"),
];

/// Checks a cron trigger string without computing its schedule.
///
/// Accepts exactly what the executor's `CronSchedule::parse` accepts, except that a time-zone
/// name is only checked for its shape (see the module docs).
///
/// # Errors
///
/// [`CronError::UnknownTimeZone`] for a malformed `TZ=`/`CRON_TZ=` zone name,
/// [`CronError::Empty`] when nothing follows the prefix, and [`CronError::Invalid`] for an
/// unknown descriptor, a wrong number of fields or a bad field (the reason names the field).
pub fn validate(src: &str) -> Result<(), CronError> {
    let (zone, pattern) = split_time_zone(src);
    if let Some(zone) = zone {
        if !is_zone_name(zone) {
            return Err(CronError::UnknownTimeZone {
                cron: src.to_owned(),
                zone: zone.to_owned(),
            });
        }
    }
    if pattern.is_empty() {
        return Err(CronError::Empty {
            cron: src.to_owned(),
        });
    }
    check_pattern(pattern).map_err(|reason| CronError::Invalid {
        cron: src.to_owned(),
        reason,
    })
}

/// Splits a trigger string into its time-zone name (if it has a `TZ=` or `CRON_TZ=` prefix) and
/// the schedule after it, both as written, with surrounding whitespace removed.
///
/// The zone is not checked: `split_time_zone("TZ= * * * * *")` is `(Some(""), "* * * * *")`.
pub fn split_time_zone(src: &str) -> (Option<&str>, &str) {
    let trimmed = src.trim();
    let rest = trimmed
        .strip_prefix("CRON_TZ=")
        .or_else(|| trimmed.strip_prefix("TZ="));
    match rest {
        None => (None, trimmed),
        Some(rest) => {
            let (zone, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (Some(zone), pattern.trim())
        }
    }
}

/// Whether `zone` looks like an IANA zone name: non-empty `/`-separated segments of ASCII
/// letters, digits, `_`, `-` and `+`.
fn is_zone_name(zone: &str) -> bool {
    zone.split('/').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
    })
}

/// Checks a non-empty schedule (the part after any time-zone prefix); the error is the reason.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.starts_with('@') {
        if DESCRIPTORS.iter().any(|d| d.eq_ignore_ascii_case(pattern)) {
            return Ok(());
        }
        return Err(format!(
            "unknown descriptor {pattern:?} (use one of {})",
            DESCRIPTORS.join(", ")
        ));
    }
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    if fields.len() != Field::ALL.len() {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    }
    for (field, text) in Field::ALL.into_iter().zip(fields) {
        check_field(field, text)
            .map_err(|reason| format!("{} field {text:?}: {reason}", field.name()))?;
    }
    Ok(())
}

/// One of the five fields of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// The smallest and largest value of the field.
    fn bounds(self) -> (u16, u16) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    fn is_day(self) -> bool {
        matches!(self, Field::DayOfMonth | Field::DayOfWeek)
    }

    /// Whether `c` may appear in the field once names are replaced and `?` is read as `*`.
    fn allows(self, c: char) -> bool {
        c.is_ascii_digit()
            || matches!(c, '*' | '/' | ',' | '-')
            || match self {
                Field::DayOfMonth => matches!(c, 'L' | 'W'),
                Field::DayOfWeek => matches!(c, 'L' | '#'),
                _ => false,
            }
    }
}

/// Checks one field as written; the error is the reason (without the field's name).
fn check_field(field: Field, raw: &str) -> Result<(), String> {
    if let Some(c) = raw.chars().find(|c| !c.is_ascii()) {
        return Err(format!("unexpected character {c:?}"));
    }
    if raw.contains('+') {
        return Err("a sign is not allowed before a number".to_owned());
    }
    let mut text = raw.to_ascii_uppercase();
    for (name, number) in NAMES {
        text = text.replace(name, number);
    }
    if field.is_day() {
        text = text.replace('?', "*");
    }
    check_special_characters(field, &text)?;
    if text != "*" {
        for part in text.split(',').filter(|part| !part.is_empty()) {
            check_part(field, part)?;
        }
    }
    // What the parts' syntax let through unread (after a `W`, or between `#` and a final `L`).
    match text.chars().find(|&c| !field.allows(c)) {
        Some(c) => Err(format!("unexpected character {c:?}")),
        None => Ok(()),
    }
}

/// Rejects `?`, `#`, `L` and `W` (standing alone, not inside a longer word) outside the fields
/// that allow them.
fn check_special_characters(field: Field, text: &str) -> Result<(), String> {
    if text.contains('?') {
        return Err("`?` is only allowed in day-of-month and day-of-week".to_owned());
    }
    if text.contains('#') && field != Field::DayOfWeek {
        return Err("`#` is only allowed in day-of-week".to_owned());
    }
    for word in text.split(|c: char| !c.is_ascii_alphabetic()) {
        match word {
            "L" if !field.is_day() => {
                return Err("`L` is only allowed in day-of-month and day-of-week".to_owned())
            }
            "W" | "LW" if field != Field::DayOfMonth => {
                return Err("`W` is only allowed in day-of-month".to_owned())
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks one non-empty item of a comma-separated list (upper-cased, names replaced).
fn check_part(field: Field, part: &str) -> Result<(), String> {
    if part.contains('/') {
        check_step(field, part)
    } else if part.contains('-') {
        check_range(field, part)
    } else if part.contains('W') {
        check_nearest_weekday(field, part)
    } else if part == "L" {
        Ok(())
    } else {
        check_value(field, part)
    }
}

/// Strips a day-of-week suffix: `#k` (k-th weekday of the month, 1-5) or a final `L` (last
/// one); everything from the first `#` on goes. Returns the rest.
fn strip_nth(part: &str) -> Result<&str, String> {
    let (body, nth) = part.split_once('#').unwrap_or((part, ""));
    if part.ends_with('L') || !part.contains('#') {
        return Ok(body);
    }
    match nth.parse::<u8>() {
        Ok(1..=5) => Ok(body),
        Ok(_) => Err("the number after `#` must be 1-5".to_owned()),
        Err(_) => Err("invalid number after `#`".to_owned()),
    }
}

/// Parses a number the way the executor does (ASCII digits, at most 65535).
fn number(text: &str) -> Option<u16> {
    text.parse().ok()
}

/// `*/n`, `a-b/n` or `a/n`.
fn check_step(field: Field, part: &str) -> Result<(), String> {
    let body = strip_nth(part)?;
    let (min, max) = field.bounds();
    let mut pieces = body.split('/');
    let (Some(range), Some(step), None) = (pieces.next(), pieces.next(), pieces.next()) else {
        return Err("a step needs exactly one `/`".to_owned());
    };
    let step = number(step).ok_or("invalid step")?;
    if step == 0 {
        return Err("step must not be zero".to_owned());
    }
    let (start, end) = if range == "*" {
        (min, max)
    } else if range.is_empty() {
        return Err(format!("a step needs a start (write `*/{step}`)"));
    } else if let Some((start, end)) = range.split_once('-') {
        if end.contains('-') {
            return Err("invalid range syntax".to_owned());
        }
        let start = number(start).ok_or("invalid start of range")?;
        (start, number(end).ok_or("invalid end of range")?)
    } else {
        (number(range).ok_or("invalid start of step")?, max)
    };
    if start > end {
        return Err("range start is after its end".to_owned());
    }
    if start < min || end > max {
        return Err("range out of bounds".to_owned());
    }
    // The executor walks the values in 16 bits; a step that overflows it is an error there.
    let mut value = start;
    while value <= end {
        value = value.checked_add(step).ok_or("step too large")?;
    }
    Ok(())
}

/// `a-b`.
fn check_range(field: Field, part: &str) -> Result<(), String> {
    let body = strip_nth(part)?;
    let (min, max) = field.bounds();
    let pieces: Vec<&str> = body.split('-').collect();
    let [start, end] = pieces[..] else {
        return Err("invalid range syntax".to_owned());
    };
    let start = number(start).ok_or("invalid start of range")?;
    let end = number(end).ok_or("invalid end of range")?;
    if start > end {
        return Err("range start is after its end".to_owned());
    }
    if start < min || end > max {
        return Err("range out of bounds".to_owned());
    }
    Ok(())
}

/// `nW` or `LW` (day-of-month only); anything after the `W` is only checked for its characters.
fn check_nearest_weekday(field: Field, part: &str) -> Result<(), String> {
    if field != Field::DayOfMonth {
        return Err("`W` is only allowed in day-of-month".to_owned());
    }
    let (day, _) = part.split_once('W').unwrap_or((part, ""));
    if day == "L" {
        return Ok(());
    }
    let (min, max) = field.bounds();
    match number(day) {
        Some(day) if (min..=max).contains(&day) => Ok(()),
        Some(_) => Err("day before `W` out of bounds".to_owned()),
        None => Err("invalid day before `W`".to_owned()),
    }
}

/// A single value: `n`, or in day-of-week also `nL` and `n#k`.
fn check_value(field: Field, part: &str) -> Result<(), String> {
    if part == "*" {
        return Err("`*` cannot be combined with other values".to_owned());
    }
    if part.chars().any(|c| c.is_ascii_alphabetic() && c != 'L') {
        return Err("invalid number or name".to_owned());
    }
    let mut part = part.to_owned();
    if part.ends_with('L') && !part.contains('#') {
        part = part.replace('L', "#L");
    }
    if field != Field::DayOfWeek && part.contains('L') {
        return Err("`L` after a number is only allowed in day-of-week".to_owned());
    }
    let body = strip_nth(&part)?;
    let (min, max) = field.bounds();
    match number(body) {
        Some(value) if (min..=max).contains(&value) => Ok(()),
        Some(_) => Err("number out of bounds".to_owned()),
        None => Err("invalid number or name".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(src: &str) -> String {
        match validate(src) {
            Err(CronError::Invalid { cron, reason }) => {
                assert_eq!(cron, src);
                reason
            }
            other => panic!("{src:?}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts() {
        for c in [
            "0 2 * * *",
            " 0 2 * * * ",
            "*/15 * * * *",
            "0,30 9-17 * * 1-5",
            "0 9-17/4 * * MON-FRI",
            "0 0 1 jan,Jul *",
            "0 0 ? * MON",
            "0 0 * * ?",
            "0 0 * * 7",
            "0 0 * * mon-sun",
            "5/10 * * * *",
            "0-59/100 * * * *",
            "1,,2 * * * 1,",
            "0 0 L * *",
            "0 0 LW * *",
            "0 0 15W * *",
            "0 0 * * 5L",
            "0 0 * * 1#2",
            "0 0 * * 1-5#1",
            "00 007 * * *",
            "@daily",
            "@ANNUALLY",
            "TZ=Europe/Paris 0 9 * * 1",
            "CRON_TZ=America/Argentina/Buenos_Aires 0 9 * * 1",
            "TZ=Etc/GMT+5 @hourly",
            "TZ=EST5EDT\t0 9 * * 1",
            "TZ=Mars/Olympus 0 9 * * 1",
        ] {
            assert_eq!(validate(c), Ok(()), "{c:?}");
        }
    }

    #[test]
    fn empty_and_time_zones() {
        for c in ["", "   ", "TZ=UTC", "CRON_TZ=Europe/Paris   "] {
            assert_eq!(
                validate(c),
                Err(CronError::Empty { cron: c.to_owned() }),
                "{c:?}"
            );
        }
        assert_eq!(
            validate("TZ=UTC").unwrap_err().to_string(),
            "invalid cron \"TZ=UTC\": empty schedule"
        );
        for (c, zone) in [
            ("TZ= 0 9 * * 1", ""),
            ("TZ=/UTC 0 9 * * 1", "/UTC"),
            ("TZ=Europe/ 0 9 * * 1", "Europe/"),
            ("TZ=Europe//Paris 0 9 * * 1", "Europe//Paris"),
            ("CRON_TZ=Europe/Par!s 0 9 * * 1", "Europe/Par!s"),
            ("TZ=Zürich 0 9 * * 1", "Zürich"),
            ("TZ=a.b", "a.b"),
        ] {
            assert_eq!(
                validate(c),
                Err(CronError::UnknownTimeZone {
                    cron: c.to_owned(),
                    zone: zone.to_owned()
                }),
                "{c:?}"
            );
        }
        assert_eq!(
            validate("TZ=Europe/ 0 9 * * 1").unwrap_err().to_string(),
            "invalid cron \"TZ=Europe/ 0 9 * * 1\": unknown time zone \"Europe/\""
        );
        assert_eq!(
            split_time_zone(" TZ=UTC  1 * * * * "),
            (Some("UTC"), "1 * * * *")
        );
        assert_eq!(
            split_time_zone("tz=UTC * * * * *"),
            (None, "tz=UTC * * * * *")
        );
    }

    #[test]
    fn descriptors_and_field_counts() {
        assert_eq!(
            validate("@every 5m").unwrap_err().to_string(),
            "invalid cron \"@every 5m\": unknown descriptor \"@every 5m\" (use one of @yearly, \
             @annually, @monthly, @weekly, @daily, @hourly)"
        );
        assert_eq!(
            reason("TZ=UTC @reboot"),
            "unknown descriptor \"@reboot\" (use one of @yearly, @annually, @monthly, @weekly, \
             @daily, @hourly)"
        );
        assert_eq!(
            validate("* * * *").unwrap_err().to_string(),
            "invalid cron \"* * * *\": expected 5 fields (minute hour day-of-month month \
             day-of-week), found 4"
        );
        assert_eq!(
            reason("0 0 0 * * * *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), found 7"
        );
    }

    /// Bad fields and the reasons given for them.
    #[rustfmt::skip]
    const FIELD_ERRORS: &[(&str, &str)] = &[
        ("61 * * * *", "minute field \"61\": number out of bounds"),
        ("0 24 * * *", "hour field \"24\": number out of bounds"),
        ("* * 0 * *", "day-of-month field \"0\": number out of bounds"),
        ("* * * 13 *", "month field \"13\": number out of bounds"),
        ("* * * * 8", "day-of-week field \"8\": number out of bounds"),
        ("0 0 * * MON-XYZ", "day-of-week field \"MON-XYZ\": invalid end of range"),
        ("a b c d e", "minute field \"a\": invalid number or name"),
        ("*/0 * * * *", "minute field \"*/0\": step must not be zero"),
        ("*/x * * * *", "minute field \"*/x\": invalid step"),
        ("/5 * * * *", "minute field \"/5\": a step needs a start (write `*/5`)"),
        ("1/2/3 * * * *", "minute field \"1/2/3\": a step needs exactly one `/`"),
        ("0 5-1 * * *", "hour field \"5-1\": range start is after its end"),
        ("0 20-25 * * *", "hour field \"20-25\": range out of bounds"),
        ("0 1-2-3 * * *", "hour field \"1-2-3\": invalid range syntax"),
        ("0 -3 * * *", "hour field \"-3\": invalid start of range"),
        ("0 10-30/5 * * *", "hour field \"10-30/5\": range out of bounds"),
        ("30/65530 * * * *", "minute field \"30/65530\": step too large"),
        ("*/65536 * * * *", "minute field \"*/65536\": invalid step"),
        ("*,5 * * * *", "minute field \"*,5\": `*` cannot be combined with other values"),
        ("? * * * *", "minute field \"?\": `?` is only allowed in day-of-month and day-of-week"),
        ("L * * * *", "minute field \"L\": `L` is only allowed in day-of-month and day-of-week"),
        ("0 0 * * 1W", "day-of-week field \"1W\": `W` is only allowed in day-of-month"),
        ("0 0 5#2 * *", "day-of-month field \"5#2\": `#` is only allowed in day-of-week"),
        ("0 0 5L * *", "day-of-month field \"5L\": `L` after a number is only allowed in day-of-week"),
        ("0 0 32W * *", "day-of-month field \"32W\": day before `W` out of bounds"),
        ("0 0 15Wx * *", "day-of-month field \"15Wx\": unexpected character 'X'"),
        ("0 0 * * 1#6", "day-of-week field \"1#6\": the number after `#` must be 1-5"),
        ("0 0 * * 1#", "day-of-week field \"1#\": invalid number after `#`"),
        ("+5 * * * *", "minute field \"+5\": a sign is not allowed before a number"),
        ("0 0 * * ſun", "day-of-week field \"ſun\": unexpected character 'ſ'"),
        ("0 0 * APRIL *", "month field \"APRIL\": invalid number or name"),
    ];

    #[test]
    fn field_errors() {
        for &(c, want) in FIELD_ERRORS {
            assert_eq!(reason(c), want, "{c:?}");
        }
    }
}
