//! Keeping the tasks of one burst of work on CPUs of their own while it
//! lasts (the IDLE fan-out to thousands of sessions, `imap/idlers.rs`).
//!
//! A burst is split into one task per tokio worker, and the first wakes the
//! others. The kernel tends to place a woken thread on its waker's CPU
//! (good for request and reply, where the data is hot there), so on cores
//! shared with clients two workers often ended up on one CPU while the
//! other ran a client: the burst got one core where it had two. Measured at
//! 10,000 idling sessions on 2 cores (README, "IDLE"): the last `EXISTS` of
//! a delivery came after 26, 40 or 51 ms, by where the workers happened to
//! be (one worker doing half the shards of the other, or both at half
//! speed); with each task holding a CPU of its own for the pass, the p99
//! over four runs was 35-41 ms against 45-60 ms, the write-only floor's
//! 38-39 ms.
//!
//! Pinning the workers for good did the same for the fan-out but cost 10-20%
//! of the SMTP rate against Postfix's `smtp-source` with 4 KiB messages
//! (`scripts/bench-peers.sh`, alternating runs), where a worker woken on the
//! client's CPU finds its data in the cache: so a task holds its CPU only
//! while the burst runs, and gives the thread its old mask back after.
//!
//! Linux only (elsewhere [`Claims::hold`] does nothing), and only the first
//! 64 CPUs are handed out.

use std::sync::atomic::{AtomicU64, Ordering};

/// The CPUs the tasks of one burst have taken.
#[derive(Debug, Default)]
pub struct Claims(AtomicU64);

/// A thread kept on one CPU until dropped, when it gets its old mask back.
#[derive(Debug)]
#[must_use = "the thread is let go again when this is dropped"]
pub struct Held {
    #[cfg(target_os = "linux")]
    old: Option<libc::cpu_set_t>,
    /// The CPU held, if any.
    pub cpu: Option<usize>,
}

impl Claims {
    pub fn new() -> Claims {
        Claims::default()
    }

    /// The CPUs held so far, a bit per CPU (a CPU stays counted after its
    /// task let it go).
    pub fn held(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Keeps the calling thread on a CPU no other task of this burst holds:
    /// the one it runs on if that is free, else the first free one it may
    /// use (the thread moves there now). Holds nothing when every CPU it
    /// may use is taken or the kernel refuses.
    pub fn hold(&self) -> Held {
        #[cfg(target_os = "linux")]
        {
            linux::hold(&self.0)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Held { cpu: None }
        }
    }
}

/// The CPUs (of the first 64) the calling thread may run on now; none
/// where that is unknown.
pub fn allowed() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        linux::mask().map_or_else(Vec::new, |set| linux::cpus_in(&set))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    const SET: usize = std::mem::size_of::<libc::cpu_set_t>();

    pub(super) fn mask() -> Option<libc::cpu_set_t> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel fills
        // at most SET bytes of it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            (libc::sched_getaffinity(0, SET, &mut set) == 0).then_some(set)
        }
    }

    pub(super) fn cpus_in(set: &libc::cpu_set_t) -> Vec<usize> {
        // SAFETY: c < 64 <= CPU_SETSIZE.
        (0..64)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, set) })
            .collect()
    }

    fn set_mask(set: &libc::cpu_set_t) -> bool {
        // SAFETY: a valid set of SET bytes, for the calling thread (0).
        unsafe { libc::sched_setaffinity(0, SET, set) == 0 }
    }

    pub(super) fn hold(taken: &AtomicU64) -> Held {
        let none = Held {
            old: None,
            cpu: None,
        };
        let Some(old) = mask() else { return none };
        // SAFETY: sched_getcpu has no preconditions (-1 on failure).
        let now = unsafe { libc::sched_getcpu() };
        let allowed = cpus_in(&old);
        let here = usize::try_from(now).ok().filter(|c| allowed.contains(c));
        let others = allowed.iter().copied().filter(|&c| Some(c) != here);
        for cpu in here.into_iter().chain(others) {
            let bit = 1u64 << cpu;
            if taken.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
                continue;
            }
            // SAFETY: as in `mask`; cpu < 64.
            let one = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                set
            };
            if !set_mask(&one) {
                taken.fetch_and(!bit, Ordering::AcqRel);
                return none;
            }
            return Held {
                old: Some(old),
                cpu: Some(cpu),
            };
        }
        none
    }

    impl Drop for Held {
        fn drop(&mut self) {
            if let Some(old) = &self.old {
                // Best effort: a refusal leaves the thread on its one CPU,
                // which costs only the placement.
                let _ = set_mask(old);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_held_thread_runs_on_its_cpu_alone_and_gets_its_mask_back() {
        let before = allowed();
        let claims = Claims::new();
        let held = claims.hold();
        let cpu = held.cpu.expect("a CPU to hold");
        assert!(before.contains(&cpu));
        assert_eq!(allowed(), vec![cpu]);
        drop(held);
        assert_eq!(allowed(), before);
    }

    #[test]
    fn the_tasks_of_one_burst_hold_different_cpus_and_run_out() {
        let all = allowed();
        let claims = Claims::new();
        // One thread per allowed CPU, each holding until all have tried.
        let barrier = std::sync::Barrier::new(all.len() + 1);
        let held: Vec<Option<usize>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..=all.len())
                .map(|_| {
                    s.spawn(|| {
                        let held = claims.hold();
                        let cpu = held.cpu;
                        if let Some(c) = cpu {
                            assert_eq!(allowed(), vec![c]);
                        }
                        barrier.wait();
                        cpu
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut cpus: Vec<usize> = held.iter().flatten().copied().collect();
        cpus.sort();
        assert_eq!(cpus, all, "every allowed CPU held once: {held:?}");
        assert_eq!(
            held.iter().filter(|c| c.is_none()).count(),
            1,
            "one too many"
        );
    }
}
