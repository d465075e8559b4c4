//! The three file and API formats a user writes: scenario TOML, probe target
//! TOML and fault rules as JSON. Whatever the text, parsing never panics; an
//! accepted file yields a usable value (a summary, a target whose limits hold,
//! a rule that survives a JSON and a TOML round trip), and a refused one an
//! error whose `file:line:column` lies inside the text.

use std::path::Path;
use std::sync::Arc;

use mailrig_core::fault::{FaultPlan, FaultRuleSpec};
use mailrig_core::{Scenario, ScenarioError, World};
use mailrig_probe::{Target, TargetError};

/// The name the fuzzed text goes by in error messages.
pub const FILE: &str = "fuzz.toml";

/// Asserts that a located error (scenario or target file) names `FILE`, is
/// shown as `FILE:LINE:COLUMN: message`, and points inside `src`.
fn assert_located(src: &str, shown: &str, file: &str, line: usize, column: usize, message: &str) {
    assert_eq!(file, FILE);
    assert!(
        shown.starts_with(&format!("{FILE}:{line}:{column}: ")),
        "{shown}"
    );
    assert_inside(src, line, column, message);
}

/// Asserts that a 1-based `line:column` names a place in `src` (the end of
/// a line, and of the text, included).
pub fn assert_inside(src: &str, line: usize, column: usize, message: &str) {
    let lines: Vec<&str> = src.split('\n').collect();
    assert!(
        line >= 1 && line <= lines.len(),
        "error line {line} is outside the text's {} line(s): {message}",
        lines.len()
    );
    let width = lines[line - 1].chars().count();
    assert!(
        column >= 1 && column <= width + 1,
        "error column {column} is outside line {line} ({width} characters): {message}"
    );
    assert!(!message.trim().is_empty(), "an error without a message");
}

/// The fuzz target `scenario_toml`: `Scenario::parse`.
pub fn check_scenario(input: &[u8]) {
    let Ok(src) = std::str::from_utf8(input) else {
        return;
    };
    match Scenario::parse(src, FILE) {
        Ok(s) => {
            let summary = s.summary();
            assert!(
                summary.starts_with(&format!("scenario {FILE}: ")),
                "summary does not name the file: {summary}"
            );
            assert_eq!(s.to_string(), summary, "Display is not the summary");
            assert_eq!(s.faults.len(), s.faults.rules().len());
            for d in &s.world.domains {
                assert!(
                    summary.contains(d.name.as_str()),
                    "summary misses domain {}",
                    d.name
                );
            }
            // The same text is the same world.
            let again = Scenario::parse(src, FILE).expect("the same text parsed twice");
            assert_eq!(again.summary(), summary, "parsing is not deterministic");
        }
        Err(
            ref e @ ScenarioError::Invalid {
                ref file,
                line,
                column,
                ref message,
            },
        ) => assert_located(src, &e.to_string(), file, line, column, message),
        Err(e @ ScenarioError::Read { .. }) => panic!("parsing text read a file: {e}"),
    }
}

/// The fuzz target `target_toml`: `Target::parse_with`, relative paths
/// against a folder that does not exist, one environment variable known.
pub fn check_target(input: &[u8]) {
    let Ok(src) = std::str::from_utf8(input) else {
        return;
    };
    let env = |k: &str| (k == "MAILRIG_FUZZ_PASSWORD").then(|| "secret".to_string());
    let base = Path::new("/nonexistent/mailrig-fuzz");
    match Target::parse_with(src, FILE, base, &env) {
        Ok(t) => {
            assert_eq!(t.source, FILE);
            assert!(!t.smtp.host.is_empty(), "an empty SMTP host was accepted");
            for d in [t.timeout, t.connect_timeout] {
                assert!(
                    !d.is_zero() && d.as_secs() < 86_400,
                    "a timeout of {d:?} was accepted"
                );
            }
            assert!(t.concurrency >= 1, "concurrency 0 was accepted");
            for m in &t.mailboxes {
                let (local, domain) = m
                    .address
                    .rsplit_once('@')
                    .unwrap_or_else(|| panic!("accepted mailbox '{}' has no @", m.address));
                assert!(
                    !local.is_empty() && !domain.is_empty(),
                    "accepted '{}'",
                    m.address
                );
                assert_eq!(m.domain(), domain.to_ascii_lowercase());
                assert!(
                    !m.read.host.is_empty(),
                    "mailbox {} has no read host",
                    m.address
                );
            }
            let again = Target::parse_with(src, FILE, base, &env).expect("parsed twice");
            assert_eq!(again, t, "parsing is not deterministic");
        }
        Err(
            ref e @ TargetError::Invalid {
                ref file,
                line,
                column,
                ref message,
            },
        ) => assert_located(src, &e.to_string(), file, line, column, message),
        Err(e @ TargetError::Read { .. }) => panic!("parsing text read the target file: {e}"),
    }
}

/// The world fault rules are checked against (every selector has something
/// to name: two domains, ranges, an alias, a catch-all).
pub fn fault_world() -> Arc<World> {
    static WORLD: std::sync::OnceLock<Arc<World>> = std::sync::OnceLock::new();
    WORLD
        .get_or_init(|| {
            let toml = crate::session::WORLD_TOML.replace("BARE_LF", "normalize");
            let s = Scenario::parse(&toml, "fuzz-world.toml")
                .unwrap_or_else(|e| panic!("the fuzz world is invalid: {e}"));
            s.world
        })
        .clone()
}

/// The fuzz target `fault_json`: a rule as the control API receives it.
pub fn check_fault(input: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<FaultRuleSpec>(input) else {
        return;
    };
    // JSON round trip: what we print is what we read.
    let json = serde_json::to_string(&spec).expect("a rule prints as JSON");
    let back: FaultRuleSpec = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("printed rule {json} does not parse: {e}"));
    assert_eq!(back, spec, "JSON round trip changed the rule: {json}");
    // The TOML form (a [[fault]] table's keys) says the same, where TOML can
    // hold the values at all (it has no integers above i64::MAX).
    if let Ok(text) = toml::to_string(&spec) {
        let back = mailrig_server::faults::parse_toml_spec(&text)
            .unwrap_or_else(|e| panic!("printed rule\n{text}\ndoes not parse as TOML: {e}"));
        assert_eq!(back, spec, "TOML round trip changed the rule:\n{text}");
    }
    // Validation against a world: the accepted rule, printed and read back,
    // is accepted again and does the same; a refusal says why.
    let world = fault_world();
    let mut plan = FaultPlan::default();
    match plan.add(spec.clone(), &world) {
        Ok(warnings) => {
            let rule = plan.rules().last().expect("an added rule");
            let stored = serde_json::to_string(&rule.spec).expect("a stored rule prints");
            let reread: FaultRuleSpec = serde_json::from_str(&stored).expect("stored rule parses");
            let mut again = FaultPlan::default();
            let warnings_again = again.add(reread, &world).unwrap_or_else(|e| {
                panic!("the stored form {stored} of an accepted rule is refused: {e}")
            });
            assert_eq!(warnings_again, warnings, "warnings differ for {stored}");
            let twin = again.rules().last().expect("an added rule");
            assert_eq!(
                twin.does(),
                rule.does(),
                "the re-read rule does something else"
            );
            assert_eq!(twin.stage, rule.stage);
        }
        Err(message) => assert!(!message.trim().is_empty(), "a refusal without a reason"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_accepts_line_ends_and_refuses_beyond() {
        assert_inside("ab\ncd", 2, 3, "x");
        assert!(std::panic::catch_unwind(|| assert_inside("ab", 2, 1, "x")).is_err());
        assert!(std::panic::catch_unwind(|| assert_inside("ab", 1, 4, "x")).is_err());
    }

    #[test]
    fn checks_accept_the_repository_examples() {
        check_scenario(include_bytes!(
            "../../../crates/mailrig-core/catalog/kanzlei-2-of-25.toml"
        ));
        check_target(include_bytes!(
            "../../../testdata/targets/kanzlei-local.toml"
        ));
        check_fault(br#"{"stage":"rcpt","action":"reject","mailbox":"user03..user25","code":550}"#);
    }
}
