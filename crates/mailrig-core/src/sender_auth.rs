//! Sender authentication as data: the policy a receiving host applies
//! (`sender_auth = "off" | "record" | "enforce"`) and the results of one
//! message's SPF, DKIM, DMARC and ARC checks as the journal, the API and the
//! stored copy's `Authentication-Results:` header (RFC 8601) show them.
//! The checks themselves run in `mailrig-server` (`sender_auth`), against the
//! world's DNS.

use serde::{Deserialize, Serialize};

/// What a receiving host does with the result of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderAuthPolicy {
    /// No checks, no header (a one-server world without `[dns]`/`[[host]]`).
    #[default]
    Off,
    /// Check, add `Authentication-Results:`, journal and count; accept anyway.
    Record,
    /// As `Record`, and refuse with `550 5.7.1` what fails DMARC under `p=reject`.
    Enforce,
}

impl SenderAuthPolicy {
    /// The policy by its scenario name.
    pub fn parse(s: &str) -> Option<SenderAuthPolicy> {
        match s {
            "off" => Some(SenderAuthPolicy::Off),
            "record" => Some(SenderAuthPolicy::Record),
            "enforce" => Some(SenderAuthPolicy::Enforce),
            _ => None,
        }
    }

    pub fn is_on(self) -> bool {
        self != SenderAuthPolicy::Off
    }
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimCheck {
    /// `pass`, `fail`, `neutral`, `temperror`, `permerror`.
    pub result: String,
    /// The signing domain (`d=`) and selector (`s=`).
    pub domain: String,
    pub selector: String,
    /// Why it did not pass (`None` on a pass).
    pub reason: Option<String>,
}

/// The results of one message's checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    /// SPF of the MAIL FROM domain (or the HELO name for the null sender):
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`.
    pub spf: String,
    /// The domain SPF was checked for.
    pub spf_domain: String,
    /// One entry per signature; empty when the message is unsigned (`dkim=none`).
    pub dkim: Vec<DkimCheck>,
    /// `pass`, `fail`, `none`, `temperror`, `permerror`.
    pub dmarc: String,
    /// The policy of the From domain's DMARC record: `none`, `quarantine`,
    /// `reject`, or `unspecified` when there is no record.
    pub dmarc_policy: String,
    /// The RFC 5322 From domain DMARC judged.
    pub header_from: String,
    /// The ARC chain's result, when the message carries one.
    pub arc: Option<String>,
    /// The `Authentication-Results:` field as prepended (CRLF-terminated).
    pub header: String,
}

impl AuthResults {
    /// The combined DKIM word: `pass` if any signature passed, else the first
    /// signature's result, `none` when unsigned.
    pub fn dkim_result(&self) -> &str {
        if self.dkim.iter().any(|d| d.result == "pass") {
            return "pass";
        }
        self.dkim.first().map_or("none", |d| d.result.as_str())
    }

    /// Whether a host enforcing DMARC refuses the message: DMARC failed and
    /// the From domain publishes `p=reject`.
    pub fn dmarc_rejects(&self) -> bool {
        self.dmarc == "fail" && self.dmarc_policy == "reject"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(dkim: &[&str], dmarc: &str, policy: &str) -> AuthResults {
        AuthResults {
            spf: "none".into(),
            spf_domain: "a.test".into(),
            dkim: dkim
                .iter()
                .map(|r| DkimCheck {
                    result: r.to_string(),
                    domain: "a.test".into(),
                    selector: "s".into(),
                    reason: None,
                })
                .collect(),
            dmarc: dmarc.into(),
            dmarc_policy: policy.into(),
            header_from: "a.test".into(),
            arc: None,
            header: String::new(),
        }
    }

    #[test]
    fn one_passing_signature_is_a_dkim_pass() {
        assert_eq!(
            results(&["fail", "pass"], "pass", "none").dkim_result(),
            "pass"
        );
        assert_eq!(results(&["fail"], "fail", "none").dkim_result(), "fail");
        assert_eq!(results(&[], "none", "unspecified").dkim_result(), "none");
    }

    #[test]
    fn only_a_dmarc_fail_under_p_reject_is_refused() {
        assert!(results(&["fail"], "fail", "reject").dmarc_rejects());
        assert!(!results(&["fail"], "fail", "quarantine").dmarc_rejects());
        assert!(!results(&["pass"], "pass", "reject").dmarc_rejects());
    }

    #[test]
    fn the_default_policy_follows_the_world_and_the_summary_says_it() {
        let one = "[[domain]]\nname = 'a.test'\nmailboxes = ['u']\npassword = 'p'\n";
        let s = crate::Scenario::parse(one, "t").unwrap();
        assert_eq!(s.world.security.sender_auth, SenderAuthPolicy::Off);
        assert!(!s.summary().contains("sender authentication"));
        let s = crate::Scenario::parse(&format!("{one}[dns]\n"), "t").unwrap();
        assert_eq!(s.world.security.sender_auth, SenderAuthPolicy::Record);
        let e = format!("[security]\nsender_auth = 'enforce'\n{one}");
        let s = crate::Scenario::parse(&e, "t").unwrap();
        assert!(
            s.summary().contains("sender authentication: enforce"),
            "{}",
            s.summary()
        );
        let bad = format!("[security]\nsender_auth = 'strict'\n{one}");
        let err = crate::Scenario::parse(&bad, "t").unwrap_err().to_string();
        assert!(err.starts_with("t:2:15:"), "{err}");
    }

    #[test]
    fn policies_by_name() {
        assert_eq!(
            SenderAuthPolicy::parse("enforce"),
            Some(SenderAuthPolicy::Enforce)
        );
        assert_eq!(SenderAuthPolicy::parse("Enforce"), None);
        assert!(!SenderAuthPolicy::Off.is_on());
    }
}
