//! The one duration syntax of every flag and file that takes a time:
//! `30s`, `5m`, `1h`, `250ms`, or a bare number of seconds (`1.5`). The load
//! driver's `--duration`/`--timeout`/thresholds and the prober's `--every`
//! read through it, each with its own bounds.

use std::time::Duration;

/// Parses a duration; `noun` names what it is in the error (`a duration`,
/// `an interval`).
pub fn parse_duration(input: &str, noun: &str) -> Result<Duration, String> {
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{input}' is not {noun} (e.g. 30s, 5m, 1h, 250ms)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "'{input}': unknown unit '{unit}' (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{input}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        assert_eq!(parse_duration("30s", "x").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("250ms", "x").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("2m", "x").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("1h", "x").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_duration("1.5", "x").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(
            parse_duration("m", "an interval")
                .unwrap_err()
                .contains("not an interval")
        );
        assert!(
            parse_duration("5x", "x")
                .unwrap_err()
                .contains("unknown unit 'x'")
        );
    }
}
