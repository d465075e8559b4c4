//! The fault plan: rules that make a stage of a session do something other than
//! the normal thing (reject, defer, drop, misroute, delay, disconnect, ...).
//!
//! Each stage of a session asks the plan for a [`FaultDecision`]; the plan
//! answers `Pass` unless a rule matches. This module currently knows the stages
//! and the decision shape; the rule language of scenario files (`[[fault]]`)
//! is the fault-injector issue's work, and until then a file with fault rules
//! is refused with a clear error rather than silently ignored.

use serde::Deserialize;

use crate::world::World;

/// Where in a message's path a fault can act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Connect,
    Greeting,
    Tls,
    Ehlo,
    Auth,
    Mail,
    Rcpt,
    Data,
    EndOfData,
    Route,
    Deliver,
    ImapLogin,
    ImapSelect,
    ImapFetch,
    Pop3,
}

/// One `[[fault]]` table of a scenario file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct FaultRuleSpec(pub toml::Table);

/// A fault rule that cannot be used, with the byte offset it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError {
    pub offset: usize,
    pub message: String,
}

/// What a stage should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultDecision {
    /// Carry on normally.
    Pass,
}

/// The active fault rules of a world.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    rules: Vec<FaultRuleSpec>,
}

impl FaultPlan {
    /// Builds the plan from a scenario's `[[fault]]` tables.
    pub fn from_specs(
        specs: &[FaultRuleSpec],
        _world: &World,
    ) -> Result<FaultPlan, FaultSpecError> {
        if !specs.is_empty() {
            return Err(FaultSpecError {
                offset: 0,
                message: "[[fault]] rules are not supported by this version of mailrig yet".into(),
            });
        }
        Ok(FaultPlan { rules: Vec::new() })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
