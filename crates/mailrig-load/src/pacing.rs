//! When each message starts: the [`Schedule`] hands out tickets (sequence number + due time) to sessions.
//!
//! Closed loop: a ticket is due the moment a session asks for it. Open loop: ticket `n` is due at
//! `start + n / rate`, whatever state the server is in; a session that picks the ticket up late (because every
//! session was busy with a slow server) still measures the message's latency from the *due* time. That is
//! what avoids coordinated omission: a stalled server makes the queue of due messages grow, and that wait
//! shows up in the latency numbers instead of silently lowering the offered load.
//!
//! The schedule is also where a run's bounds live: the message count, the deadline and the stop flag.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Pacing;

/// One message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Sequence number (unique in the run, from 0).
    pub seq: u64,
    /// When the message was due to start; latencies of the whole message count from here.
    pub due: Instant,
}

impl Ticket {
    /// Latency of the message if it completes at `done`.
    pub fn latency(&self, done: Instant) -> Duration {
        done.saturating_duration_since(self.due)
    }
}

/// Hands out tickets until the count, the deadline or a stop ends the run. Shared by all sessions.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    pacing: Pacing,
    limit: u64,
    deadline: Option<Instant>,
    next: AtomicU64,
    issued: AtomicU64,
    stopped: AtomicBool,
}

impl Schedule {
    /// A schedule starting at `start`, for at most `messages` messages and/or `duration`.
    pub fn new(
        start: Instant,
        pacing: Pacing,
        messages: Option<u64>,
        duration: Option<Duration>,
    ) -> Schedule {
        Schedule {
            start,
            pacing,
            limit: messages.unwrap_or(u64::MAX),
            deadline: duration.map(|d| start + d),
            next: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The deadline, if the run has a duration.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Open loop: when message `seq` is due (`start + seq / rate`). Closed loop: `None`.
    pub fn due_time(&self, seq: u64) -> Option<Instant> {
        match self.pacing {
            Pacing::Closed => None,
            Pacing::Open { rate } => {
                let offset =
                    Duration::try_from_secs_f64(seq as f64 / rate).unwrap_or(Duration::MAX);
                self.start.checked_add(offset)
            }
        }
    }

    /// The next ticket, or `None` when the run is over (count reached, deadline passed, stopped). `now` is
    /// the caller's clock reading (a parameter so tests can drive time by hand).
    pub fn next_ticket(&self, now: Instant) -> Option<Ticket> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            return None;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if seq >= self.limit {
            return None;
        }
        let due = match self.pacing {
            Pacing::Closed => now,
            Pacing::Open { .. } => {
                let due = self.due_time(seq)?;
                if self.deadline.is_some_and(|d| due >= d) {
                    return None;
                }
                due
            }
        };
        self.issued.fetch_add(1, Ordering::Relaxed);
        Some(Ticket { seq, due })
    }

    /// Ends the run early (Ctrl-C); sessions take no more tickets.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether [`Schedule::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Tickets handed out so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Open loop: how many messages were due before `end` (capped by the count) — compare with the tickets
    /// issued to see how many due messages were never started. Closed loop: `None`.
    pub fn due_before(&self, end: Instant) -> Option<u64> {
        match self.pacing {
            Pacing::Closed => None,
            Pacing::Open { rate } => {
                let end = self.deadline.map_or(end, |d| d.min(end));
                let elapsed = end.saturating_duration_since(self.start).as_secs_f64();
                let due = (elapsed * rate).ceil() as u64;
                Some(due.min(self.limit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn open_loop_arrivals_are_on_a_fixed_grid() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pacing::Open { rate: 100.0 }, Some(5), None);
        let dues: Vec<Duration> = std::iter::from_fn(|| s.next_ticket(t0))
            .map(|t| t.due - t0)
            .collect();
        assert_eq!(dues, [ms(0), ms(10), ms(20), ms(30), ms(40)]);
        assert_eq!(s.issued(), 5);
        assert_eq!(s.next_ticket(t0 + ms(1000)), None);
    }

    #[test]
    fn open_loop_stops_at_the_deadline() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pacing::Open { rate: 10.0 }, None, Some(ms(1000)));
        let n = std::iter::from_fn(|| s.next_ticket(t0)).count();
        assert_eq!(n, 10); // due at 0, 100, ... 900 ms
        assert_eq!(s.due_before(t0 + ms(5000)), Some(10));
    }

    /// A server that takes 50 ms per message, offered 100 messages/s on one session: the queue grows by 40 ms
    /// per message, and the measured latency must show it (from the due time), not a flat 50 ms (from the
    /// moment the busy session finally got round to sending).
    #[test]
    fn late_messages_count_from_their_due_time() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pacing::Open { rate: 100.0 }, Some(10), None);
        let service = ms(50);
        let mut session_free = t0;
        let mut latencies = vec![];
        let mut send_to_reply = vec![];
        while let Some(ticket) = s.next_ticket(session_free) {
            let sent = ticket.due.max(session_free);
            let done = sent + service;
            latencies.push(ticket.latency(done));
            send_to_reply.push(done - sent);
            session_free = done;
        }
        assert_eq!(latencies.len(), 10);
        for (n, l) in latencies.iter().enumerate() {
            assert_eq!(*l, ms(50 + 40 * n as u64), "message {n}");
        }
        // what coordinated omission would have reported:
        assert!(send_to_reply.iter().all(|d| *d == service));
    }

    #[test]
    fn closed_loop_is_due_on_request_and_bounded() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pacing::Closed, Some(3), None);
        let later = t0 + ms(7);
        assert_eq!(
            s.next_ticket(later).map(|t| (t.seq, t.due)),
            Some((0, later))
        );
        assert!(s.next_ticket(later).is_some());
        assert!(s.next_ticket(later).is_some());
        assert_eq!(s.next_ticket(later), None);
        assert_eq!(s.issued(), 3);
        assert_eq!(s.due_before(later), None);
    }

    #[test]
    fn stop_and_deadline_end_a_closed_loop() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pacing::Closed, None, Some(ms(100)));
        assert!(s.next_ticket(t0 + ms(99)).is_some());
        assert!(s.next_ticket(t0 + ms(100)).is_none());
        s.stop();
        assert!(s.next_ticket(t0).is_none());
    }
}
