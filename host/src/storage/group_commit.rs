//! [`GroupCommit`]: concurrent callers of a store's flush share one disk sync.
//!
//! Every first visit must make its assignments durable before the page is acknowledged,
//! and on sled that is a sync of the log (`Db::flush`, 0.2 to 1 ms on this project's machine). Each
//! caller paying its own sync caps first visits at one sync each, however many learners
//! arrive at once. Here a caller whose writes are done asks for a sync; if none is
//! running, it runs one (the leader); if one is running, it waits for the *next* one,
//! which the first of those waiting leads, for all that arrived meanwhile. So one sync
//! serves every caller that arrived while the previous one ran.
//!
//! The guarantee is unchanged: a caller returns only after a sync that *began after* it
//! arrived, hence after its writes, has finished (a sync already running may have started
//! before them, so it never counts). Syncs are numbered (generations) and run one at a
//! time, in order, under one mutex; a caller waits for the generation that had not yet
//! started when it arrived. A failed sync's error goes to every caller that waited on it;
//! a sync that panics makes each of its waiters panic too (the store's wrapper turns a
//! panic into a store failure, as for the leader), and never leaves them waiting.
//!
//! Before it syncs, a leader waits until as many callers have arrived as the last sync
//! served, for at most the time the last sync took (never more than [`MAX_GATHER`]). Why:
//! sled holds its global lock for the whole of `Db::flush`, and every transaction and batch
//! (an assignment with its outbox entry) needs that lock exclusively, so no visitor can
//! store its groups while a sync runs. A leader that synced the moment it arrived shut
//! out the writes of the visitors just behind it (measured with 8 learners at once: 2 to
//! 3 callers a sync). Waiting for as many callers as the last sync served (under steady
//! load, the same learners coming round again) lets their writes in before the sync
//! (about 3 a sync for whole first visits, 6 to 7 for a first visit's store calls alone). A lone caller after a lone caller does not wait at all; after a
//! burst, the first lone caller waits the bound once.
//!
//! The sync function is the caller's (each passes the same one), so the primitive knows
//! nothing of sled and its tests count syncs with a function of their own.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a leader waits for other callers before it syncs (a disk whose syncs
/// stall must not make every flush wait as long).
pub const MAX_GATHER: Duration = Duration::from_millis(2);

/// What a finished generation left for the callers that waited on it and have not yet
/// collected it (successes leave nothing).
enum Failure<E> {
    Error(E),
    Panicked,
}

struct State<E> {
    /// Generations started so far: the running or last sync is number `started`.
    started: u64,
    /// Generations finished so far (they finish in order: one runs at a time).
    finished: u64,
    /// Failed generations with their waiters that have not yet taken the outcome.
    failures: BTreeMap<u64, (Failure<E>, usize)>,
    /// Callers waiting on each generation not yet finished.
    waiting: BTreeMap<u64, usize>,
    /// A leader is waiting for other callers before it starts the next sync (callers
    /// arriving meanwhile wait for that sync).
    gathering: bool,
    /// How long the last sync took: the most a leader waits for other callers.
    last_sync: Duration,
    /// How many callers the last sync served: a leader waits for as many.
    last_served: usize,
}

impl<E> State<E> {
    fn running(&self) -> bool {
        self.started > self.finished
    }

    /// Whether an arriving caller may lead the next sync now.
    fn may_lead(&self) -> bool {
        !self.running() && !self.gathering
    }
}

/// Shares syncs between concurrent callers. `E` is the sync's error, handed to each caller
/// that waited on the failed sync (hence `Clone`: sled's error is).
pub struct GroupCommit<E> {
    state: Mutex<State<E>>,
    /// Signalled when a sync finishes (its waiters collect its outcome).
    done: Condvar,
    /// Signalled when a caller arrives while a leader gathers.
    arrived: Condvar,
}

impl<E: Clone> Default for GroupCommit<E> {
    fn default() -> Self {
        GroupCommit::new()
    }
}

impl<E: Clone> GroupCommit<E> {
    pub fn new() -> GroupCommit<E> {
        GroupCommit {
            state: Mutex::new(State {
                started: 0,
                finished: 0,
                failures: BTreeMap::new(),
                waiting: BTreeMap::new(),
                gathering: false,
                last_sync: Duration::ZERO,
                last_served: 0,
            }),
            done: Condvar::new(),
            arrived: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once a sync that began after this call has finished, running `sync` itself
    /// when no other caller is running one; the sync's error if that sync failed. Call it
    /// after the writes it must make durable have completed.
    pub fn commit(&self, sync: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut state = self.lock();
        // The first generation that has not started: the one after a running sync.
        let mine = state.started + 1;
        *state.waiting.entry(mine).or_default() += 1;
        if state.gathering {
            self.arrived.notify_one();
        }
        loop {
            if state.finished >= mine {
                return self.collect(state, mine);
            }
            if state.may_lead() {
                // No sync running, and ours not done: the previous one has finished, so
                // ours is next, and this caller leads it, once the others have asked too.
                debug_assert_eq!(state.started + 1, mine);
                state = self.gather(state, mine);
                state.started = mine;
                drop(state);
                let outcome = {
                    let mut finishing = Finishing {
                        group: self,
                        generation: mine,
                        outcome: None,
                        took: None,
                    };
                    let began = Instant::now();
                    let outcome = sync();
                    finishing.took = Some(began.elapsed());
                    finishing.outcome = Some(outcome.as_ref().err().cloned());
                    outcome
                };
                // `Finishing` recorded the outcome and woke the waiters.
                let mut state = self.lock();
                self.leave(&mut state, mine);
                return outcome;
            }
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The leader's wait before its sync: until as many callers as the last sync served
    /// have arrived, for at most the last sync's time (never more than [`MAX_GATHER`]).
    /// Callers arriving meanwhile wait for this sync.
    fn gather<'a>(
        &'a self,
        mut state: MutexGuard<'a, State<E>>,
        mine: u64,
    ) -> MutexGuard<'a, State<E>> {
        let started = Instant::now();
        let bound = state.last_sync.min(MAX_GATHER);
        state.gathering = true;
        loop {
            let arrived = state.waiting.get(&mine).copied().unwrap_or(0);
            if arrived >= state.last_served {
                break;
            }
            let Some(left) = bound.checked_sub(started.elapsed()) else {
                break;
            };
            state = self
                .arrived
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.gathering = false;
        state
    }

    /// The outcome of finished generation `mine`, for a caller that waited on it.
    fn collect(&self, mut state: MutexGuard<'_, State<E>>, mine: u64) -> Result<(), E> {
        let outcome = match state.failures.get_mut(&mine) {
            None => Ok(()),
            Some((failure, left)) => {
                *left -= 1;
                let outcome = match failure {
                    Failure::Error(e) => Err(Some(e.clone())),
                    Failure::Panicked => Err(None),
                };
                if *left == 0 {
                    state.failures.remove(&mine);
                }
                outcome
            }
        };
        self.leave(&mut state, mine);
        drop(state);
        match outcome {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => panic!("the store's sync panicked in the thread that ran it"),
        }
    }

    /// This caller no longer waits on `generation`.
    fn leave(&self, state: &mut State<E>, generation: u64) {
        if let Some(n) = state.waiting.get_mut(&generation) {
            *n -= 1;
            if *n == 0 {
                state.waiting.remove(&generation);
            }
        }
    }
}

/// Ends the leader's generation, also when its sync panics: records the outcome for the
/// other waiters and wakes them.
struct Finishing<'a, E: Clone> {
    group: &'a GroupCommit<E>,
    generation: u64,
    /// `Some(None)`: succeeded, `Some(Some(e))`: failed, `None`: the sync panicked.
    outcome: Option<Option<E>>,
    /// How long the sync took, when it returned.
    took: Option<Duration>,
}

impl<E: Clone> Drop for Finishing<'_, E> {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        let others = state
            .waiting
            .get(&self.generation)
            .copied()
            .unwrap_or(0)
            .saturating_sub(1);
        let outcome = self.outcome.take();
        let panicked = outcome.is_none();
        let failure = match outcome {
            Some(None) => None,
            Some(Some(e)) => Some(Failure::Error(e)),
            None => Some(Failure::Panicked),
        };
        if let Some(failure) = failure
            && others > 0
        {
            state.failures.insert(self.generation, (failure, others));
        }
        if panicked {
            // The leader unwinds and never reaches `leave`.
            self.group.leave(&mut state, self.generation);
        }
        if let Some(took) = self.took {
            state.last_sync = took;
        }
        state.last_served = state.waiting.get(&self.generation).copied().unwrap_or(0);
        state.finished = self.generation;
        drop(state);
        self.group.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::*;

    /// A store's stand-in that is not a mock: a counter of writes, and a sync that makes
    /// durable what was written when it began (so a caller that returned before a sync
    /// that began after its write would find its write not durable).
    #[derive(Default)]
    struct Counted {
        written: AtomicU64,
        durable: AtomicU64,
        syncs: AtomicU64,
        running: AtomicU64,
    }

    impl Counted {
        fn write(&self) -> u64 {
            self.written.fetch_add(1, Ordering::SeqCst) + 1
        }

        fn sync(&self, took: Duration) -> Result<(), String> {
            assert_eq!(
                self.running.fetch_add(1, Ordering::SeqCst),
                0,
                "two syncs ran at once"
            );
            let upto = self.written.load(Ordering::SeqCst);
            std::thread::sleep(took);
            self.durable.fetch_max(upto, Ordering::SeqCst);
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Waits until `n` callers wait on the second sync (the first one held running); a
    /// primitive that let them wait on another fails here instead of hanging.
    fn waiting_on_second_sync(group: &GroupCommit<String>, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while group.lock().waiting.get(&2).copied().unwrap_or(0) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{n} callers never waited on the sync after the running one"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_caller_returns_only_after_a_sync_that_began_after_its_write() {
        let store = Counted::default();
        let group = GroupCommit::<String>::new();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        let mine = store.write();
                        group
                            .commit(|| store.sync(Duration::from_micros(50)))
                            .unwrap();
                        let durable = store.durable.load(Ordering::SeqCst);
                        assert!(
                            durable >= mine,
                            "write {mine} acknowledged, durable {durable}"
                        );
                    }
                });
            }
        });
        assert_eq!(store.durable.load(Ordering::SeqCst), 1600);
    }

    #[test]
    fn a_sync_running_when_a_caller_arrives_does_not_count_for_it() {
        let store = Arc::new(Counted::default());
        let group = Arc::new(GroupCommit::<String>::new());
        let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        // A sync that began before the second write, held running until that write is done.
        let leader = {
            let (store, group) = (store.clone(), group.clone());
            let (started, release) = (started.clone(), release.clone());
            std::thread::spawn(move || {
                store.write();
                group
                    .commit(|| {
                        let upto = store.written.load(Ordering::SeqCst);
                        started.wait();
                        release.wait();
                        store.durable.fetch_max(upto, Ordering::SeqCst);
                        store.syncs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
            })
        };
        started.wait();
        let mine = store.write();
        let follower = {
            let (store, group) = (store.clone(), group.clone());
            std::thread::spawn(move || {
                group.commit(|| store.sync(Duration::ZERO)).unwrap();
                store.durable.load(Ordering::SeqCst)
            })
        };
        // The follower must be waiting (on the sync after the running one) before the
        // running sync ends, or it would lead its own and the test would prove nothing.
        waiting_on_second_sync(&group, 1);
        release.wait();
        leader.join().unwrap();
        let durable = follower.join().unwrap();
        assert!(
            durable >= mine,
            "acknowledged write {mine}, durable {durable}"
        );
        assert_eq!(store.syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn one_sync_serves_every_caller_that_arrived_while_another_ran() {
        let store = Arc::new(Counted::default());
        let group = Arc::new(GroupCommit::<String>::new());
        let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let leader = {
            let (store, group) = (store.clone(), group.clone());
            let (started, release) = (started.clone(), release.clone());
            std::thread::spawn(move || {
                store.write();
                group
                    .commit(|| {
                        started.wait();
                        release.wait();
                        store.syncs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
            })
        };
        started.wait();
        // Sixteen callers arrive while the first sync runs: one more sync serves them all.
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let (store, group) = (store.clone(), group.clone());
                std::thread::spawn(move || {
                    let mine = store.write();
                    group.commit(|| store.sync(Duration::ZERO)).unwrap();
                    assert!(store.durable.load(Ordering::SeqCst) >= mine);
                })
            })
            .collect();
        waiting_on_second_sync(&group, 16);
        release.wait();
        leader.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(store.syncs.load(Ordering::SeqCst), 2, "17 callers, 2 syncs");
        assert!(group.lock().waiting.is_empty());
    }

    #[test]
    fn a_failed_sync_fails_every_caller_that_waited_on_it_and_the_next_is_tried_again() {
        let group = Arc::new(GroupCommit::<String>::new());
        let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let leader = {
            let group = group.clone();
            let (started, release) = (started.clone(), release.clone());
            std::thread::spawn(move || {
                group.commit(|| {
                    started.wait();
                    release.wait();
                    Ok(())
                })
            })
        };
        started.wait();
        let syncs = Arc::new(AtomicU64::new(0));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (group, syncs) = (group.clone(), syncs.clone());
                std::thread::spawn(move || {
                    group.commit(|| {
                        syncs.fetch_add(1, Ordering::SeqCst);
                        Err("disk full".to_string())
                    })
                })
            })
            .collect();
        waiting_on_second_sync(&group, 4);
        release.wait();
        assert_eq!(leader.join().unwrap(), Ok(()));
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err("disk full".to_string()));
        }
        assert_eq!(
            syncs.load(Ordering::SeqCst),
            1,
            "one failed sync for all four"
        );
        assert!(
            group.lock().failures.is_empty(),
            "the outcome is forgotten once taken"
        );
        // The next caller runs a sync of its own.
        assert_eq!(group.commit(|| Ok(())), Ok(()));
    }

    #[test]
    fn a_sync_that_panics_never_leaves_its_waiters_waiting() {
        let group = Arc::new(GroupCommit::<String>::new());
        let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let first = {
            let group = group.clone();
            let (started, release) = (started.clone(), release.clone());
            std::thread::spawn(move || {
                group.commit(|| {
                    started.wait();
                    release.wait();
                    Ok(())
                })
            })
        };
        started.wait();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let group = group.clone();
                std::thread::spawn(move || {
                    group.commit(|| -> Result<(), String> { panic!("sled panicked") })
                })
            })
            .collect();
        waiting_on_second_sync(&group, 3);
        release.wait();
        assert_eq!(first.join().unwrap(), Ok(()));
        for w in waiters {
            assert!(w.join().is_err(), "each waiter of the panicked sync panics");
        }
        let state = group.lock();
        assert!(state.waiting.is_empty() && state.failures.is_empty());
        drop(state);
        assert_eq!(group.commit(|| Ok(())), Ok(()));
    }
}
