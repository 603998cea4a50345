//! Differential test: `inngest_protocol::cron::validate` against the executor's croner-based parser.
//!
//! `original` below is the executor module's `CronSchedule::parse` acceptance logic copied
//! verbatim, once on croner 4 configured as the executor now configures it (the reference), and
//! once on croner 2.2 (what the executor used before), to record how the port changed it.

use std::collections::BTreeMap;

use inngest_protocol::cron::{validate, CronError};

/// What a parser said about a string: accepted, or the kind of error (for a bad field, its name).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    Empty,
    UnknownTimeZone(String),
    /// The field named by the reason, or the whole reason when it names none.
    Invalid(String),
}

fn field_of(reason: &str) -> String {
    match reason.split_once(" field ") {
        Some((name, _)) if !name.contains(' ') => name.to_owned(),
        _ => reason.to_owned(),
    }
}

fn outcome(r: Result<(), CronError>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(CronError::Empty { .. }) => Outcome::Empty,
        Err(CronError::UnknownTimeZone { zone, .. }) => Outcome::UnknownTimeZone(zone),
        Err(CronError::Invalid { reason, .. }) => Outcome::Invalid(field_of(&reason)),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// The original executor module's parse logic, generic over the croner version.
mod original {
    use super::{field_of, Outcome};
    use chrono_tz::Tz;

    const NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

    /// `parse_croner` is "does croner accept this pattern", the only thing that differs.
    pub fn parse(src: &str, parse_croner: &dyn Fn(&str) -> bool) -> Outcome {
        let trimmed = src.trim();
        let pattern = match split_tz(trimmed) {
            Ok(pattern) => pattern.trim(),
            Err(zone) => return Outcome::UnknownTimeZone(zone),
        };
        if pattern.is_empty() {
            return Outcome::Empty;
        }
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
                return Outcome::Invalid(format!(
                    "unknown descriptor {pattern:?} (use one of {})",
                    known.join(", ")
                ));
            }
        } else {
            let fields = pattern.split_whitespace().count();
            if fields != 5 {
                return Outcome::Invalid(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
                ));
            }
        }
        if parse_croner(pattern) {
            Outcome::Ok
        } else {
            Outcome::Invalid(explain(pattern, parse_croner))
        }
    }

    fn split_tz(trimmed: &str) -> Result<&str, String> {
        let rest = trimmed
            .strip_prefix("CRON_TZ=")
            .or_else(|| trimmed.strip_prefix("TZ="));
        let Some(rest) = rest else {
            return Ok(trimmed);
        };
        let (zone, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        zone.parse::<Tz>().map_err(|_| zone.to_owned())?;
        Ok(pattern)
    }

    fn explain(pattern: &str, parse_croner: &dyn Fn(&str) -> bool) -> String {
        let fields: Vec<&str> = pattern.split_whitespace().collect();
        if fields.len() == NAMES.len() {
            for (i, field) in fields.iter().enumerate() {
                let mut alone = ["*"; 5];
                alone[i] = field;
                if !parse_croner(&alone.join(" ")) {
                    return field_of(&format!("{} field {field:?}: …", NAMES[i]));
                }
            }
        }
        "no single field fails".to_owned()
    }
}

/// croner 4, configured as the executor configures it.
fn croner4(pattern: &str) -> bool {
    use croner::parser::{CronParser, Seconds, Year};
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build()
        .parse(pattern)
        .is_ok()
}

/// croner 2.2, as the executor used it before.
fn croner2(pattern: &str) -> bool {
    croner2::Cron::new(pattern).parse().is_ok()
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Field tokens, valid and not, for every field.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    // numbers in and out of range
    "*", "0", "1", "5", "7", "8", "12", "13", "23", "24", "29", "31", "32", "59", "60", "99", "255",
    "256", "65535", "65536", "007", "00", "-1", "+5", "1+", "5 ",
    // ranges
    "1-5", "5-1", "0-59", "0-60", "1-31", "1-12", "0-7", "0-6", "1-1", "10-20", "1-2-3", "-5", "5-",
    "1--5", "*-5", "5-*", "1-+5", "20-23", "0-23", "1-32",
    // steps
    "*/5", "*/0", "*/1", "*/7", "*/60", "*/100", "*/255", "*/256", "*/65535", "*/65536", "5/10",
    "0/15", "30/7", "/5", "/", "*/", "1-10/2", "10-1/2", "1-10/0", "*/x", "1/2/3", "59/65535",
    "50/250", "50/206", "*/+5", "*//5", "1-5/2/3", "?/5", "L/2", "1/2L", "*/2#3", "*/2L", "*/2#L",
    "0-59/30", "1-31/10", "1-12/3", "0-7/2",
    // lists
    "1,2", "1,,2", "1,", ",1", ",", ",,", "*,5", "5,*", "1,2-4,*/10", "1-5,10-15/2", "*,*", "0,30",
    "1,2,3,4,5",
    // names
    "JAN", "jan", "Dec", "FEB-MAR", "MON", "mon-fri", "SUN", "sun-sat", "MON-SUN", "wed-sun",
    "SAT-SUN", "JUL-AUG/2", "MONL", "MON#2", "monday", "JUNE", "XYZ", "MON-XYZ", "APRIL", "SEPT",
    "mOn", "TUE,THU", "jan-dec/3", "sun,-sun", "1-sun", "sunov", "junk", "fri#5", "satL",
    // ? L W #
    "?", "1?", "??", "?-5", "5-?", "L", "l", "5L", "LL", "5LL", "L5", "LW", "lw", "L-5", "1-5L",
    "5#L", "5#2L", "5##L", "5#*L", "5#xL", "5#?L", "1-5#2", "1-5#2L", "7L", "0L", "8L", "L,5", "W",
    "15W", "1W", "31W", "32W", "0W", "15W5", "15WW", "15WL", "15W*", "15W?", "15Wx", "LW5", "W15",
    "15W#", "15W,1", "1w", "1#1", "1#5", "1#0", "1#6", "1#", "#2", "7#2", "8#2", "1#2#3", "5#1/2",
    "5#/L", "5#-L", "1#01", "1#+2",
    // junk
    "a", "x", "@", "@daily", "**", "*?", "*5", "5*", "1.5", "1_2", "\u{17f}un", "fr\u{131}",
    "\u{e9}", "5\u{e9}", "\u{ff11}", "\u{17f}ep",
];

/// Tokens that keep most of a pattern valid, so that one odd field decides the outcome.
const COMMON: &[&str] = &["*", "0", "1", "*/5", "1-5", "1,2", "5/10", "1-10/3"];

/// Valid tokens for each field, to make accepted patterns common.
#[rustfmt::skip]
const VALID: [&[&str]; 5] = [
    &["0", "59", "*/15", "0-59/30", "30/7", "*/100", "00", "5,10,15", "1,,2", "JAN"],
    &["0", "23", "9-17", "*/2", "20-23/2", "8,20", "007", "*/65535", "1-sun"],
    &["1", "31", "L", "LW", "15W", "?", "1-31/10", "15W5", "L,15", "1-15", "*/2"],
    &["1", "12", "JAN", "jan-dec/3", "FEB-MAR", "Dec", "1-12/3", "JUL-AUG/2", "6,12"],
    &["0", "7", "MON-FRI", "MON-SUN", "5L", "1#2", "fri#5", "satL", "?", "0-7/2", "5#2L"],
];

#[rustfmt::skip]
const ZONES: &[&str] = &[
    "UTC", "Europe/Paris", "Etc/GMT+5", "EST5EDT", "America/Argentina/Buenos_Aires", "", "/UTC",
    "Europe/", "Europe//Paris", "Par!s", "Mars/Olympus", "utc", "Local",
];

/// Every token in every field position (the others `*`), plus random combinations.
fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for token in TOKENS {
        for i in 0..5 {
            let mut fields = ["*"; 5];
            fields[i] = token;
            out.push(fields.join(" "));
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..40_000 {
        out.push(random_pattern(&mut rng));
    }
    for c in [
        "",
        " ",
        "@daily",
        "@Weekly",
        "@every 5m",
        "@midnight",
        "@reboot",
        "@ daily",
    ] {
        out.push(c.to_owned());
    }
    out
}

fn random_pattern(rng: &mut Rng) -> String {
    let count = [5, 5, 5, 5, 5, 5, 5, 5, 4, 6, 0, 1][rng.below(12)];
    let fields: Vec<String> = (0..count)
        .map(|i| {
            let items = 1 + rng.below(3) * rng.below(2);
            let list: Vec<&str> = (0..items)
                .map(|_| match rng.below(16) {
                    0..=10 => rng.pick(VALID[i % 5]),
                    11 | 12 => rng.pick(COMMON),
                    _ => rng.pick(TOKENS),
                })
                .collect();
            list.join(",")
        })
        .collect();
    let pattern = fields.join([" ", " ", "  ", "\t"][rng.below(4)]);
    match rng.below(8) {
        0 => format!("TZ={} {pattern}", rng.pick(ZONES)),
        1 => format!("CRON_TZ={} {pattern}", rng.pick(ZONES)),
        2 => format!(" {pattern} "),
        _ => pattern,
    }
}

/// Inputs where `validate` deliberately rejects what croner 4 (as configured) accepts; each is
/// listed in the module docs of `inngest_protocol::cron`.
fn narrowed(src: &str) -> Option<&'static str> {
    let (_, pattern) = inngest_protocol::cron::split_time_zone(src);
    if pattern.contains('+') {
        Some("sign")
    } else if !pattern.is_ascii() {
        Some("non-ASCII case folding")
    } else if pattern
        .split(|c: char| c.is_whitespace() || c == ',')
        .any(|item| item.starts_with('/'))
    {
        Some("step without a start")
    } else {
        None
    }
}

/// A well-shaped zone name that chrono-tz does not know: `validate` cannot tell.
fn unknown_but_well_shaped(src: &str) -> Option<String> {
    let (zone, _) = inngest_protocol::cron::split_time_zone(src);
    let zone = zone?;
    let with_utc = src.replacen(&format!("={zone}"), "=UTC", 1);
    let well_shaped = validate(&format!("TZ={zone} @daily")).is_ok();
    (well_shaped && zone.parse::<chrono_tz::Tz>().is_err()).then_some(with_utc)
}

#[test]
fn validate_matches_croner4_executor() {
    let corpus = corpus();
    assert!(corpus.len() >= 5_000, "{}", corpus.len());
    let mut narrowings: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut accepted, mut rejected) = (0, 0);
    for src in &corpus {
        let mine = outcome(validate(src));
        let mut reference = original::parse(src, &croner4);
        if let Some(with_utc) = unknown_but_well_shaped(src) {
            assert!(matches!(reference, Outcome::UnknownTimeZone(_)), "{src:?}");
            reference = original::parse(&with_utc, &croner4);
        }
        if mine == Outcome::Ok {
            accepted += 1;
        } else {
            rejected += 1;
        }
        if let (Some(why), false) = (narrowed(src), mine == Outcome::Ok) {
            // Narrowed input: `validate` may reject more, and may name an earlier field.
            if reference == Outcome::Ok {
                *narrowings.entry(why).or_default() += 1;
            }
            continue;
        }
        assert_eq!(mine, reference, "{src:?}");
    }
    eprintln!(
        "{} strings: {accepted} accepted, {rejected} rejected; narrowed: {narrowings:?}",
        corpus.len()
    );
    assert!(accepted > 2_000 && rejected > 2_000);
}

/// Field texts as croner 4 sees them: upper-cased, names replaced, `?` as `*` in the day fields.
fn normalised_fields(pattern: &str) -> Vec<String> {
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
    pattern
        .split_whitespace()
        .enumerate()
        .map(|(i, field)| {
            let mut text = field.to_ascii_uppercase();
            for (name, number) in NAMES {
                text = text.replace(name, number);
            }
            if i == 2 || i == 4 {
                text = text.replace('?', "*");
            }
            text
        })
        .collect()
}

/// Why the port's acceptance differs from the croner 2.2 executor for `src`, if it may.
fn croner2_change(src: &str, now_accepted: bool) -> Option<&'static str> {
    let (_, pattern) = inngest_protocol::cron::split_time_zone(src);
    let fields = normalised_fields(pattern);
    let legal = |i: usize, c: char| {
        c.is_ascii_digit()
            || "*/,-".contains(c)
            || (i == 2 && "LW".contains(c))
            || (i == 4 && "L#".contains(c))
    };
    let items = |i: usize| -> Vec<String> {
        fields
            .get(i)
            .map_or(vec![], |f| f.split(',').map(str::to_owned).collect())
    };
    if now_accepted {
        if items(2).iter().any(|item| item.starts_with("LW")) {
            return Some("now accepted: `LW` (last weekday of the month)");
        }
        if (0..fields.len()).any(|i| items(i).iter().any(|item| wide_step(i, item))) {
            return Some("now accepted: steps that overflow 8 bits (`*/256`, `50/250`)");
        }
        return None;
    }
    if pattern.contains('+') {
        return Some("now rejected: a `+` sign (`+5`)");
    }
    if fields
        .iter()
        .enumerate()
        .any(|(i, f)| i != 2 && i != 4 && f.contains('?'))
    {
        return Some("now rejected: `?` outside the day fields");
    }
    if fields
        .iter()
        .enumerate()
        .any(|(i, f)| i != 2 && i != 4 && f.split(',').any(|x| x == "L"))
    {
        return Some("now rejected: `L` outside the day fields");
    }
    if fields
        .iter()
        .enumerate()
        .any(|(i, f)| f.chars().any(|c| !legal(i, c)))
    {
        return Some("now rejected: junk after `W` or between `#` and `L` (`15Wx`, `5#xL`)");
    }
    None
}

/// A step item whose walk leaves 8 bits (croner 2 parses and steps in `u8`).
fn wide_step(field: usize, item: &str) -> bool {
    let body = item.split('#').next().unwrap_or("");
    let Some((range, step)) = body.split_once('/') else {
        return false;
    };
    let min = u32::from(field == 2 || field == 3);
    let start = range.split('-').next().unwrap_or("");
    let start = start.parse::<u32>().unwrap_or(min);
    step.parse::<u32>()
        .is_ok_and(|step| step > 255 || start + step > 255)
}

#[test]
fn changes_from_croner2_executor() {
    let mut changes: BTreeMap<&str, usize> = BTreeMap::new();
    for src in corpus() {
        let now = validate(&src).is_ok();
        let before = original::parse(&src, &croner2) == Outcome::Ok;
        if unknown_but_well_shaped(&src).is_some() || now == before {
            continue;
        }
        let why = croner2_change(&src, now)
            .unwrap_or_else(|| panic!("{src:?}: unexplained change (before {before}, now {now})"));
        *changes.entry(why).or_default() += 1;
    }
    for (why, n) in &changes {
        eprintln!("{n:6}  {why}");
    }
}
