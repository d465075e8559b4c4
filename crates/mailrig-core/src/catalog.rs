//! The scenario catalog: the files of `crates/mailrig-core/catalog/`, embedded in the
//! program so `mailrig scenario list`, `explain` and `serve --scenario NAME`
//! work from any directory. Each entry models one real-world misconfiguration
//! (its leading comment block says which, and how users see it).

use crate::scenario::{Scenario, ScenarioError};

/// One embedded scenario file.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    /// The file name without `.toml`.
    pub name: &'static str,
    /// The file's text.
    pub text: &'static str,
}

macro_rules! catalog {
    ($($name:literal),* $(,)?) => {
        &[$(CatalogEntry {
            name: $name,
            text: include_str!(concat!("../catalog/", $name, ".toml")),
        }),*]
    };
}

/// Every scenario file of `catalog/`, sorted by name (a test keeps
/// this list and the folder in step).
pub const CATALOG: &[CatalogEntry] = catalog![
    "altered-in-transit",
    "auth-backend-broken",
    "backup-mx-blackhole",
    "catch-all-swallows",
    "default",
    "defers-everything",
    "dkim-key-rotated",
    "dmarc-typo",
    "duplicates",
    "expired-certificate",
    "flaky-firewall",
    "greylisting",
    "hidden-messages",
    "imap-login-broken",
    "kanzlei",
    "kanzlei-2-of-25",
    "kanzlei-pop3-collector",
    "late-delivery",
    "migration-bounces-5.1.1",
    "misrouted-alias",
    "quota-full",
    "rate-limit",
    "size-limit-too-low",
    "slow-server",
    "spam-filter-junk",
    "spf-omits-sender",
    "starttls-broken",
    "uidvalidity-reset",
    "wrong-host-certificate",
];

impl CatalogEntry {
    /// The source name used in messages: `catalog/NAME.toml`.
    pub fn source(&self) -> String {
        format!("catalog/{}.toml", self.name)
    }

    /// Parses the embedded file.
    pub fn load(&self) -> Result<Scenario, ScenarioError> {
        Scenario::parse(self.text, &self.source())
    }
}

/// The catalog entry with this name (`.toml` may be given or left off).
pub fn find(name: &str) -> Option<&'static CatalogEntry> {
    let name = name.strip_suffix(".toml").unwrap_or(name);
    CATALOG.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_matches_the_folder_and_every_entry_is_clean() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".toml").map(str::to_string)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = CATALOG.iter().map(|e| e.name).collect();
        assert_eq!(on_disk, embedded, "add new scenario files to CATALOG");
        for e in CATALOG {
            let s = e.load().unwrap_or_else(|err| panic!("{err}"));
            assert!(s.warnings.is_empty(), "{}: {:?}", e.name, s.warnings);
            assert!(!s.description.is_empty(), "{} has no description", e.name);
        }
        assert!(find("kanzlei-2-of-25.toml").is_some());
        assert!(find("nope").is_none());
    }
}
