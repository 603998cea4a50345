//! The baseline for the cel spike's binary size and build time: the dependencies the executor
//! already has (serde_json, chrono, chrono-tz, regex, base64), each used, and no `cel`.
fn main() {
    let path = std::env::args().nth(1).expect("vectors path");
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let re = regex::Regex::new(std::env::args().nth(2).as_deref().unwrap_or("a+")).unwrap();
    let tz: chrono_tz::Tz = std::env::args()
        .nth(3)
        .as_deref()
        .unwrap_or("UTC")
        .parse()
        .unwrap();
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(text.len().to_string());
    println!(
        "{} {} {} {b}",
        v.as_array().map_or(0, |a| a.len()),
        re.is_match(&text),
        chrono::Utc::now().with_timezone(&tz)
    );
}
