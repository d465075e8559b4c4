//! The session's part in sender authentication: at the end of DATA, when
//! the host checks (`sender_auth` on), run [`crate::sender_auth`] on the
//! content, journal and count the results, and under `enforce` refuse a
//! DMARC failure whose domain says `p=reject`.

use std::sync::Arc;

use mailrig_core::fault::Stage;
use mailrig_core::journal::{JournalEvent, JournalRecord};
use mailrig_core::sender_auth::{AuthResults, SenderAuthPolicy};

use super::{Session, Transaction};
use crate::faults::message_id;
use crate::sender_auth::Received;
use crate::state::Metrics;

/// The reply of an enforcing host to a DMARC failure under `p=reject`.
pub const DMARC_REJECT: (u16, &str, &str) = (
    550,
    "5.7.1",
    "Email rejected per DMARC policy: the From domain publishes p=reject",
);

impl Session {
    /// The checks' results (`None` when the host does not check) and
    /// whether the message must be refused.
    pub(super) fn authenticate(
        &self,
        tx: &Transaction,
        content: &[u8],
    ) -> Option<(Arc<AuthResults>, bool)> {
        let checker = self.state.sender_auth.get()?;
        let policy = self.state.world.security.sender_auth;
        if !policy.is_on() {
            return None;
        }
        let results = Arc::new(checker.check(
            &Received {
                content,
                client: self.peer.ip(),
                helo: self.helo.as_deref().unwrap_or(""),
                mail_from: &tx.mail_from,
                hostname: &self.state.world.identity.hostname,
            },
            Some(&self.state.faults),
        ));
        self.state.auth.count(&results);
        self.state.journal.record(JournalRecord {
            stage: Stage::EndOfData,
            rule: None,
            message_id: message_id(content).map(Into::into),
            mail_from: Some(tx.mail_from.as_str().into()),
            rcpt: None,
            peer: Some(self.peer_text.addr.clone()),
            event: JournalEvent::Authenticated {
                results: Arc::clone(&results),
            },
        });
        let refuse = policy == SenderAuthPolicy::Enforce && results.dmarc_rejects();
        if refuse {
            Metrics::add(&self.state.auth.rejected, 1);
        }
        Some((results, refuse))
    }
}
