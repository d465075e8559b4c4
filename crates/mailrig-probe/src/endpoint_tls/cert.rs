//! What a server certificate says, and what the prober makes of it: the
//! subject, issuer, expiry and names read from its DER (x509-parser), whether
//! the host the prober connected to is among the names (RFC 6125: DNS names,
//! a `*.` wildcard for one label, IP addresses), and whether it expires
//! within the `--warn-cert-days` an admin asked for. Pure: no sockets.

use std::net::IpAddr;

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The facts of one certificate that the report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// `CN=mx.patente.test` (RFC 4514 order as x509-parser prints it).
    pub subject: String,
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    /// DNS names of the subjectAltName (or the CN when there is none).
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// Reads a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertFacts, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns_names.push(n.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
    if dns_names.is_empty() && ip_addresses.is_empty() {
        dns_names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    Ok(CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
        ip_addresses,
    })
}

/// Whether `host` (a name or an address, as the prober connected) is one of
/// the certificate's names.
pub fn name_matches(facts: &CertFacts, host: &str) -> bool {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return facts.ip_addresses.contains(&ip);
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    facts.dns_names.iter().any(|n| {
        let n = n.trim_end_matches('.').to_ascii_lowercase();
        match n.strip_prefix("*.") {
            // A wildcard stands for exactly one leftmost label.
            Some(rest) => host
                .split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
            None => n == host,
        }
    })
}

/// Whole days from `now` until `not_after` (negative: expired that long ago).
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// The warning for a certificate `days` from expiry, given `--warn-cert-days`.
pub fn expiry_warning(days: i64, warn_days: Option<u32>) -> Option<String> {
    if days < 0 {
        return Some(format!("the certificate expired {} day(s) ago", -days));
    }
    match warn_days {
        Some(w) if days < i64::from(w) => Some(format!(
            "the certificate expires in {days} day(s) (--warn-cert-days {w})"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(dns: &[&str], ips: &[&str]) -> CertFacts {
        CertFacts {
            subject: String::new(),
            issuer: String::new(),
            not_after: 0,
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addresses: ips.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn names_match_exactly_or_by_one_wildcard_label_and_addresses_by_san() {
        let f = facts(&["mx.patente.test", "*.kanzlei.test"], &["127.0.0.1"]);
        assert!(name_matches(&f, "mx.patente.test"));
        assert!(name_matches(&f, "MX.Patente.Test."));
        assert!(name_matches(&f, "imap.kanzlei.test"));
        assert!(!name_matches(&f, "kanzlei.test"));
        assert!(!name_matches(&f, "a.b.kanzlei.test"));
        assert!(!name_matches(&f, "wrong.patente.test"));
        assert!(name_matches(&f, "127.0.0.1"));
        assert!(!name_matches(&f, "127.0.0.2"));
        // A name never matches an address written as a DNS name.
        assert!(!name_matches(&facts(&["127.0.0.1"], &[]), "127.0.0.1"));
    }

    #[test]
    fn expiry_warns_inside_the_window_and_always_once_expired() {
        let day = 86_400;
        assert_eq!(days_left(10 * day + 5, 5), 10);
        assert_eq!(days_left(2 * day - 1, 0), 1);
        assert_eq!(days_left(-1, 0), -1);
        assert_eq!(expiry_warning(30, Some(14)), None);
        assert_eq!(expiry_warning(30, None), None);
        assert_eq!(
            expiry_warning(2, Some(14)).unwrap(),
            "the certificate expires in 2 day(s) (--warn-cert-days 14)"
        );
        assert_eq!(expiry_warning(14, Some(14)), None);
        assert_eq!(
            expiry_warning(-3, None).unwrap(),
            "the certificate expired 3 day(s) ago"
        );
    }
}
