//! A change counter with wake-ups: what a waiter uses to sleep until
//! something changed instead of polling (`GET /messages/wait`, the HTTP
//! event stream). The store has one for all its mailboxes, the journal one
//! for its entries.
//!
//! The protocol that loses no change: create a listener with
//! [`ChangeSignal::listen`], then read [`ChangeSignal::version`] (and the
//! data), then await the listener.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// A version number bumped by every change, and an event that wakes every
/// listener at each bump.
#[derive(Debug, Default)]
pub struct ChangeSignal {
    version: AtomicU64,
    changed: event_listener::Event,
}

impl ChangeSignal {
    pub fn new() -> ChangeSignal {
        ChangeSignal::default()
    }

    /// The number of changes so far.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A future that completes at the next [`bump`](Self::bump).
    pub fn listen(&self) -> event_listener::EventListener {
        let listener = self.changed.listen();
        // Pairs with the fence in `bump`: either `bump` sees this listener,
        // or the caller's next `version` sees the bump.
        fence(Ordering::SeqCst);
        listener
    }

    /// Records a change and wakes every listener.
    pub fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::SeqCst);
        if self.changed.total_listeners() > 0 {
            self.changed.notify(usize::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChangeSignal;
    use event_listener::Listener;
    use std::sync::Arc;

    #[test]
    fn a_bump_wakes_a_listener_created_before_it() {
        let s = Arc::new(ChangeSignal::new());
        let l = s.listen();
        assert_eq!(s.version(), 0);
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.bump());
        l.wait();
        t.join().unwrap();
        assert_eq!(s.version(), 1);
    }

    #[test]
    fn a_bump_before_listening_shows_in_the_version() {
        let s = ChangeSignal::new();
        s.bump();
        let _l = s.listen();
        assert_eq!(s.version(), 1);
    }
}
