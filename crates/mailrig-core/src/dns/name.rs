//! Domain names as the world's DNS compares them: ASCII, lower case, no
//! trailing dot, labels of 1..=63 characters from `a-z 0-9 - _` (the
//! underscore for `_dmarc` and `sel._domainkey`), at most 253 characters.

/// The normal form of a name, or what is wrong with it.
pub fn normalize(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    let n = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if n.is_empty() {
        return Err("a DNS name cannot be empty".into());
    }
    if n.len() > 253 {
        return Err(format!(
            "DNS name '{trimmed}' is longer than 253 characters"
        ));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err(format!("DNS name '{trimmed}' has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "DNS name '{trimmed}' has a label longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "DNS name '{trimmed}' contains '{c}'; use letters, digits, '-' and '_' (IDNs in their xn-- form)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "DNS name '{trimmed}': a label cannot start or end with '-'"
            ));
        }
    }
    Ok(n)
}

/// Whether `name` is `zone` or below it (both in normal form).
pub fn is_in_zone(name: &str, zone: &str) -> bool {
    name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// The reverse-lookup name of an address (`2.0.0.127.in-addr.arpa`, or the
/// nibble form under `ip6.arpa`).
pub fn reverse_name(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(a) => {
            let mut parts = Vec::with_capacity(34);
            for b in a.octets().iter().rev() {
                parts.push(format!("{:x}", b & 0xf));
                parts.push(format!("{:x}", b >> 4));
            }
            parts.push("ip6.arpa".into());
            parts.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_and_errors() {
        assert_eq!(normalize("Example.TEST.").unwrap(), "example.test");
        assert_eq!(
            normalize("sel._domainkey.example.test").unwrap(),
            "sel._domainkey.example.test"
        );
        assert!(normalize("").is_err());
        assert!(normalize("a..b").unwrap_err().contains("empty label"));
        assert!(normalize("a b.test").unwrap_err().contains("' '"));
        assert!(normalize("-a.test").is_err());
        assert!(normalize(&format!("{}.test", "a".repeat(64))).is_err());
    }

    #[test]
    fn zone_membership_is_by_label() {
        assert!(is_in_zone("example.test", "example.test"));
        assert!(is_in_zone("mx.example.test", "example.test"));
        assert!(!is_in_zone("badexample.test", "example.test"));
        assert!(!is_in_zone("test", "example.test"));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("127.0.0.2".parse().unwrap()),
            "2.0.0.127.in-addr.arpa"
        );
        let v6 = reverse_name("::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0."));
        assert!(v6.ends_with(".ip6.arpa"));
        assert_eq!(v6.split('.').count(), 34);
    }
}
