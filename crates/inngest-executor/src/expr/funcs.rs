//! Functions, arithmetic and Go-style formatting for the evaluator (see the parent module docs).

use std::borrow::Cow;

use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use inngest_protocol::expr::{BinOp, Func, TimePart};

use super::{err, List, Val};

/// `l + r` for two known values: CEL's `+`, else the server's `%v%v` string concatenation.
pub(super) fn add<'a>(l: Val<'a>, r: Val<'a>) -> Val<'a> {
    match (&l, &r) {
        (Val::Int(a), Val::Int(b)) => a
            .checked_add(*b)
            .map_or_else(|| err("integer overflow in +"), Val::Int),
        (Val::Uint(a), Val::Uint(b)) => a
            .checked_add(*b)
            .map_or_else(|| err("unsigned integer overflow in +"), Val::Uint),
        (Val::Double(a), Val::Double(b)) => Val::Double(a + b),
        (Val::Str(a), Val::Str(b)) => Val::Str(Cow::Owned(format!("{a}{b}"))),
        (Val::List(a), Val::List(b)) => Val::List(List::Owned(a.iter().chain(b.iter()).collect())),
        (Val::Time(t), Val::Dur(d)) | (Val::Dur(d), Val::Time(t)) => t
            .checked_add_signed(*d)
            .map_or_else(|| err("timestamp overflow"), Val::Time),
        (Val::Dur(a), Val::Dur(b)) => a
            .checked_add(b)
            .map_or_else(|| err("duration overflow"), Val::Dur),
        _ => Val::Str(Cow::Owned(format!("{}{}", l.go_format(), r.go_format()))),
    }
}

/// `- * / %` with CEL's strict typing (no cross-type arithmetic).
pub(super) fn arith<'a>(op: BinOp, l: &Val<'a>, r: &Val<'a>) -> Val<'a> {
    let overflow = || err("integer overflow");
    match (l, r) {
        (Val::Int(a), Val::Int(b)) => {
            let v = match op {
                BinOp::Sub => a.checked_sub(*b),
                BinOp::Mul => a.checked_mul(*b),
                BinOp::Div if *b == 0 => return err("division by zero"),
                BinOp::Div => a.checked_div(*b),
                _ if *b == 0 => return err("modulus by zero"),
                _ => a.checked_rem(*b),
            };
            v.map_or_else(overflow, Val::Int)
        }
        (Val::Uint(a), Val::Uint(b)) => {
            let v = match op {
                BinOp::Sub => a.checked_sub(*b),
                BinOp::Mul => a.checked_mul(*b),
                BinOp::Div if *b == 0 => return err("division by zero"),
                BinOp::Div => a.checked_div(*b),
                _ if *b == 0 => return err("modulus by zero"),
                _ => a.checked_rem(*b),
            };
            v.map_or_else(overflow, Val::Uint)
        }
        (Val::Double(a), Val::Double(b)) => match op {
            BinOp::Sub => Val::Double(a - b),
            BinOp::Mul => Val::Double(a * b),
            BinOp::Div => Val::Double(a / b),
            _ => no_overload(op, l, r),
        },
        (Val::Time(a), Val::Time(b)) if op == BinOp::Sub => Val::Dur(*a - *b),
        (Val::Time(a), Val::Dur(d)) if op == BinOp::Sub => a
            .checked_sub_signed(*d)
            .map_or_else(|| err("timestamp overflow"), Val::Time),
        (Val::Dur(a), Val::Dur(b)) if op == BinOp::Sub => Val::Dur(*a - *b),
        _ => no_overload(op, l, r),
    }
}

fn no_overload<'a>(op: BinOp, l: &Val<'_>, r: &Val<'_>) -> Val<'a> {
    err(format!(
        "no such overload: {} {op:?} {}",
        l.type_name(),
        r.type_name()
    ))
}

/// Calls `func` on known (not unknown, not error) arguments.
pub(super) fn call<'a>(func: Func, args: Vec<Val<'a>>, now: DateTime<Utc>) -> Val<'a> {
    let mut it = args.into_iter();
    let first = it.next().unwrap_or(Val::Null);
    let second = it.next();
    match func {
        Func::Size => match &first {
            Val::Str(s) => Val::Int(s.chars().count() as i64),
            Val::List(l) => Val::Int(l.len() as i64),
            Val::Map(m) => Val::Int(m.keys().len() as i64),
            other => err(format!("no such overload: size({})", other.type_name())),
        },
        Func::Contains | Func::StartsWith | Func::EndsWith | Func::Matches => {
            string_test(func, &first, second.as_ref())
        }
        Func::String => to_string(first),
        Func::Int => to_int(&first),
        Func::Uint => to_uint(&first),
        Func::Double => to_double(&first),
        Func::Bool => match &first {
            Val::Bool(b) => Val::Bool(*b),
            Val::Str(s) => match s.as_ref() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Val::Bool(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Val::Bool(false),
                _ => err(format!("type conversion error from string to bool: {s:?}")),
            },
            other => err(format!("no such overload: bool({})", other.type_name())),
        },
        Func::Dyn => first,
        Func::Type => Val::Type(first.type_name()),
        Func::Duration => match &first {
            Val::Str(s) => parse_go_duration(s, false)
                .map_or_else(|| err(format!("invalid duration {s:?}")), Val::Dur),
            Val::Dur(d) => Val::Dur(*d),
            other => err(format!("no such overload: duration({})", other.type_name())),
        },
        Func::Timestamp => match &first {
            Val::Str(s) => DateTime::parse_from_rfc3339(s).map_or_else(
                |_| err(format!("invalid timestamp {s:?}")),
                |t| Val::Time(t.with_timezone(&Utc)),
            ),
            Val::Int(i) => Utc
                .timestamp_opt(*i, 0)
                .single()
                .map_or_else(|| err("timestamp out of range"), Val::Time),
            Val::Time(t) => Val::Time(*t),
            other => err(format!(
                "no such overload: timestamp({})",
                other.type_name()
            )),
        },
        Func::Lowercase | Func::Uppercase => {
            let s = match &first {
                Val::Str(s) => s.as_ref(),
                _ => "",
            };
            Val::Str(Cow::Owned(if func == Func::Lowercase {
                s.to_lowercase()
            } else {
                s.to_uppercase()
            }))
        }
        Func::B64Decode => match &first {
            Val::Str(s) => Val::Str(Cow::Owned(b64decode(s))),
            _ => Val::Str(Cow::Borrowed("")),
        },
        Func::JsonParse => json_parse(&first),
        Func::Date => date(&first),
        Func::Now => Val::Time(now),
        Func::NowPlus | Func::NowMinus => match &first {
            Val::Str(s) => match parse_go_duration(s, true) {
                Some(d) if func == Func::NowPlus => Val::Time(now + d),
                Some(d) => Val::Time(now - d),
                None => Val::Abort(format!("invalid duration {s:?}")),
            },
            other => Val::Abort(format!(
                "{}() needs a string, got {}",
                func.name(),
                other.type_name()
            )),
        },
        Func::TimePart(part) => time_part(part, &first, second.as_ref()),
    }
}

fn string_test<'a>(func: Func, target: &Val<'_>, arg: Option<&Val<'_>>) -> Val<'a> {
    let (Val::Str(s), Some(Val::Str(t))) = (target, arg) else {
        return err(format!(
            "no such overload: {}.{}({})",
            target.type_name(),
            func.name(),
            arg.map_or("", Val::type_name)
        ));
    };
    Val::Bool(match func {
        Func::Contains => s.contains(t.as_ref()),
        Func::StartsWith => s.starts_with(t.as_ref()),
        Func::EndsWith => s.ends_with(t.as_ref()),
        _ => match regex::Regex::new(t) {
            Ok(re) => re.is_match(s),
            Err(e) => return err(format!("invalid regular expression: {e}")),
        },
    })
}

fn to_string(v: Val<'_>) -> Val<'_> {
    match v {
        Val::Str(s) => Val::Str(s),
        Val::Int(i) => Val::Str(Cow::Owned(i.to_string())),
        Val::Uint(u) => Val::Str(Cow::Owned(u.to_string())),
        Val::Double(f) => Val::Str(Cow::Owned(go_float(f))),
        Val::Bool(b) => Val::Str(Cow::Borrowed(if b { "true" } else { "false" })),
        Val::Time(t) => Val::Str(Cow::Owned(
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )),
        Val::Dur(d) => Val::Str(Cow::Owned(cel_duration(d))),
        other => err(format!("no such overload: string({})", other.type_name())),
    }
}

fn to_int<'a>(v: &Val<'_>) -> Val<'a> {
    match v {
        Val::Int(i) => Val::Int(*i),
        Val::Uint(u) => i64::try_from(*u).map_or_else(|_| err("int() range error"), Val::Int),
        Val::Double(f)
            if f.is_finite() && *f > -9.223_372_036_854_776e18 && *f < 9.223_372_036_854_776e18 =>
        {
            Val::Int(f.trunc() as i64)
        }
        Val::Str(s) => s
            .parse::<i64>()
            .map_or_else(|_| err(format!("cannot convert {s:?} to int")), Val::Int),
        Val::Time(t) => Val::Int(t.timestamp()),
        other => err(format!("no such overload: int({})", other.type_name())),
    }
}

fn to_uint<'a>(v: &Val<'_>) -> Val<'a> {
    match v {
        Val::Uint(u) => Val::Uint(*u),
        Val::Int(i) => u64::try_from(*i).map_or_else(|_| err("uint() range error"), Val::Uint),
        Val::Double(f) if f.is_finite() && *f >= 0.0 && *f < 1.844_674_407_370_955_2e19 => {
            Val::Uint(f.trunc() as u64)
        }
        Val::Str(s) => s
            .parse::<u64>()
            .map_or_else(|_| err(format!("cannot convert {s:?} to uint")), Val::Uint),
        other => err(format!("no such overload: uint({})", other.type_name())),
    }
}

fn to_double<'a>(v: &Val<'_>) -> Val<'a> {
    match v {
        Val::Double(f) => Val::Double(*f),
        Val::Int(i) => Val::Double(*i as f64),
        Val::Uint(u) => Val::Double(*u as f64),
        Val::Str(s) => s.parse::<f64>().map_or_else(
            |_| err(format!("cannot convert {s:?} to double")),
            Val::Double,
        ),
        other => err(format!("no such overload: double({})", other.type_name())),
    }
}

/// Standard base64 with padding; on bad input, the bytes decoded before the bad group.
fn b64decode(s: &str) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Ok(bytes) = engine.decode(s) {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        match engine.decode(chunk) {
            Ok(bytes) => out.extend(bytes),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON object as a map (numbers as doubles); anything else is an empty map.
fn json_parse<'a>(v: &Val<'_>) -> Val<'a> {
    let parsed = match v {
        Val::Str(s) => serde_json::from_str::<serde_json::Value>(s).ok(),
        _ => None,
    };
    match parsed {
        Some(obj @ serde_json::Value::Object(_)) => Val::from_owned_json(obj),
        _ => Val::Map(super::Obj::Owned(Vec::new())),
    }
}

/// `date(x)`: a string in one of Go's layouts the server tries, or unix seconds, milliseconds
/// or nanoseconds as an int; doubles and anything else are refused (an evaluation error).
fn date<'a>(v: &Val<'_>) -> Val<'a> {
    let t = match v {
        Val::Str(s) => parse_date(s),
        Val::Int(i) if *i < 946_684_800 => None,
        Val::Int(i) if *i < 9_999_999_999 => Utc.timestamp_opt(*i, 0).single(),
        Val::Int(i) if *i < 9_999_999_999_999 => Utc.timestamp_millis_opt(*i).single(),
        Val::Int(i) => Some(Utc.timestamp_nanos(*i)),
        Val::Time(t) => Some(*t),
        _ => None,
    };
    t.map_or_else(
        || Val::Abort(format!("date() cannot parse {}", v.go_format())),
        Val::Time,
    )
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    // RFC 1123 / RFC 850 / RubyDate / UnixDate / ANSIC with a zone name (UTC or GMT).
    let layouts = [
        "%a, %d %b %Y %H:%M:%S UTC",
        "%a, %d %b %Y %H:%M:%S GMT",
        "%d %b %y %H:%M UTC",
        "%d %b %y %H:%M %z",
        "%A, %d-%b-%y %H:%M:%S UTC",
        "%a %b %d %H:%M:%S %z %Y",
        "%a %b %e %H:%M:%S UTC %Y",
        "%a %b %e %H:%M:%S %Y",
        "%Y-%m-%d %H:%M:%S%.f %z UTC",
    ];
    for layout in layouts {
        if let Ok(t) = DateTime::parse_from_str(s, layout) {
            return Some(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Go's `time.ParseDuration` (`extended`: also `d` = 24h and `w` = 7d, as go-str2duration).
pub(super) fn parse_go_duration(s: &str, extended: bool) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" if extended => 86_400e9,
            "w" if extended => 604_800e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * nanos;
    }
    let total = if neg { -total } else { total };
    (total.abs() < 9.2e18).then(|| chrono::Duration::nanoseconds(total as i64))
}

fn time_part<'a>(part: TimePart, v: &Val<'_>, tz: Option<&Val<'_>>) -> Val<'a> {
    if let Val::Dur(d) = v {
        return Val::Int(match part {
            TimePart::Hours => d.num_hours(),
            TimePart::Minutes => d.num_minutes(),
            TimePart::Seconds => d.num_seconds(),
            TimePart::Milliseconds => d.num_milliseconds() % 1000,
            _ => return err(format!("no such overload: duration.{}", part_name(part))),
        });
    }
    let Val::Time(t) = v else {
        return err(format!(
            "no such overload: {}.{}",
            v.type_name(),
            part_name(part)
        ));
    };
    let local = match tz {
        None => t.naive_utc(),
        Some(Val::Str(name)) => match name.parse::<chrono_tz::Tz>() {
            Ok(zone) => t.with_timezone(&zone).naive_local(),
            Err(_) => return err(format!("unknown time zone {name:?}")),
        },
        Some(other) => return err(format!("no such overload: time zone {}", other.type_name())),
    };
    Val::Int(i64::from(match part {
        TimePart::FullYear => local.year(),
        TimePart::Month => local.month0() as i32,
        TimePart::DayOfYear => local.ordinal0() as i32,
        TimePart::DayOfMonth => local.day0() as i32,
        TimePart::Date => local.day() as i32,
        TimePart::DayOfWeek => local.weekday().num_days_from_sunday() as i32,
        TimePart::Hours => local.hour() as i32,
        TimePart::Minutes => local.minute() as i32,
        TimePart::Seconds => local.second() as i32,
        TimePart::Milliseconds => (local.nanosecond() / 1_000_000) as i32,
    }))
}

fn part_name(part: TimePart) -> &'static str {
    Func::TimePart(part).name()
}

/// Go's `%v` / `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form when the
/// decimal exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`).
pub(super) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Go's `time.Duration` `String()` (`1h0m0s`, `1.5s`, `300ms`).
pub(super) fn go_duration(d: chrono::Duration) -> String {
    let nanos = d.num_nanoseconds().unwrap_or(i64::MAX);
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (v, unit) = match n {
            n if n < 1_000 => (n as f64, "ns"),
            n if n < 1_000_000 => (n as f64 / 1e3, "µs"),
            n => (n as f64 / 1e6, "ms"),
        };
        return format!("{sign}{v}{unit}");
    }
    let secs = n as f64 / 1e9;
    let h = n / 3_600_000_000_000;
    let m = (n / 60_000_000_000) % 60;
    let s = secs - (h * 3600 + m * 60) as f64;
    let s = format!("{}", (s * 1e9).round() / 1e9);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// CEL's duration string (`90s`, `1.5s`).
pub(super) fn cel_duration(d: chrono::Duration) -> String {
    let nanos = d.num_nanoseconds().unwrap_or(i64::MAX);
    format!("{}s", nanos as f64 / 1e9)
}
