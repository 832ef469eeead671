//! Shared targets of one suite and one set of `[manager]` settings, leased to scenarios.
//!
//! A scenario takes the first booted target where nothing running claims what it claims
//! (ports, files, or the whole target for a `pause`); when there is none, a new target is
//! booted (with the pool's manager settings in place before systemd starts), up to
//! `max_targets`; beyond that it waits until a lease ends. So colliding scenarios either run
//! on separate targets at the same time or one after the other on the same target, and a
//! target is reused as soon as its previous scenario is done.
//!
//! The pool knows how many scenarios will still come ([`Pool::expect`]): once none will, a
//! finishing scenario leaves its units behind instead of cleaning up, since nobody will use
//! the target again before it is removed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Mutex, Notify};

use super::plan::{compatible, Claim};
use super::session::Session;
use crate::systemd::ManagerSettings;
use crate::target::limits::Limits;
use crate::target::{Engine, ImageRef, Target, TargetOptions};

/// A shared target could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error("{0}")]
    Boot(String),
}

/// A target as it boots: `None` until the boot ended, then the session or why it failed.
type Ready = Option<Result<Arc<Session>, String>>;

struct Slot {
    /// Stable name of the slot (the vector is compacted as failed slots go).
    id: u64,
    /// Scenarios that may share the target reserve their lease while it boots and wait here;
    /// they are all woken together (no lock in the way) when it is up.
    ready: tokio::sync::watch::Sender<Ready>,
    /// What each current lease claims.
    leases: Vec<(u64, BTreeSet<Claim>)>,
}

impl Slot {
    fn failed(&self) -> bool {
        matches!(&*self.ready.borrow(), Some(Err(_)))
    }
}

pub struct Pool {
    /// The fixture its targets boot on.
    fixture: crate::target::Fixture,
    engine: Engine,
    image: ImageRef,
    manager: ManagerSettings,
    limits: Limits,
    keep: bool,
    max_targets: usize,
    slots: Mutex<Vec<Slot>>,
    next_lease: AtomicU64,
    /// Scenarios that will still acquire a lease.
    to_come: AtomicUsize,
    released: Notify,
    /// Hints and errors of targets closed before the pool was (see [`Pool::close_idle`]).
    closed: Mutex<(Vec<String>, Vec<String>)>,
}

/// A scenario's use of a shared target; give it back with [`Pool::release`].
pub struct Lease {
    pub session: Arc<Session>,
    id: u64,
}

impl Pool {
    /// Boot this pool's targets on `fixture` (a container by default).
    pub fn on(mut self, fixture: crate::target::Fixture) -> Pool {
        self.fixture = fixture;
        self
    }

    pub fn new(engine: Engine, image: ImageRef, manager: ManagerSettings, limits: Limits, keep: bool, max_targets: usize) -> Pool {
        Pool {
            engine,
            image,
            manager,
            limits,
            keep,
            fixture: crate::target::Fixture::Container,
            max_targets: max_targets.max(1),
            slots: Mutex::new(Vec::new()),
            next_lease: AtomicU64::new(0),
            to_come: AtomicUsize::new(0),
            released: Notify::new(),
            closed: Mutex::new((Vec::new(), Vec::new())),
        }
    }

    /// `n` more scenarios will acquire a lease.
    pub fn expect(&self, n: usize) {
        self.to_come.fetch_add(n, Ordering::SeqCst);
    }

    /// Whether any scenario will still acquire a lease: if not, clean-up is wasted work.
    pub fn more_to_come(&self) -> bool {
        self.to_come.load(Ordering::SeqCst) > 0
    }

    /// Lease a target where `claims` collide with nothing running.
    pub async fn acquire(&self, claims: &BTreeSet<Claim>) -> Result<Lease, PoolError> {
        let lease = self.lease(claims).await;
        self.to_come.fetch_sub(1, Ordering::SeqCst);
        lease
    }

    async fn lease(&self, claims: &BTreeSet<Claim>) -> Result<Lease, PoolError> {
        let id = self.next_lease.fetch_add(1, Ordering::Relaxed);
        // Reserve a place: on a compatible target (booted or booting), or on a new one.
        let (mut ready, boot) = loop {
            // Registered before looking, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut slots = self.slots.lock().await;
                let free = slots.iter_mut().find(|s| !s.failed() && s.leases.iter().all(|(_, c)| compatible(c, claims)));
                if let Some(slot) = free {
                    slot.leases.push((id, claims.clone()));
                    break (slot.ready.subscribe(), None);
                }
                if slots.len() < self.max_targets {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    // The lease id is unique: it names the slot too.
                    slots.push(Slot { id, ready: tx, leases: vec![(id, claims.clone())] });
                    break (rx, Some(slots.len() - 1));
                }
            }
            released.await;
        };
        if let Some(index) = boot {
            // Booting outside the lock: scenarios that may share this target reserve their
            // lease meanwhile and are all released together when it is up, so their first
            // commands reach the target at one moment and are batched.
            let purpose = format!("run-{}-shared{index}", self.image.suite);
            let opts = TargetOptions { keep: self.keep, purpose, manager: self.manager.clone(), limits: self.limits, fixture: self.fixture, ..Default::default() };
            // Boots queue for the host-wide boot slots inside Target::boot.
            let booted = Target::boot(&self.engine, &self.image, opts).await;
            let booted = match booted {
                Ok(target) => Session::open(target).await.map(Arc::new),
                Err(e) => Err(e),
            };
            let slots = self.slots.lock().await;
            let slot = slots.iter().find(|s| s.id == id).expect("a booting slot holds its booter's lease");
            slot.ready.send_replace(Some(booted.map_err(|e| e.to_string())));
            drop(slots);
            // Others may now boot a target of their own (a failed slot is no longer chosen).
            self.released.notify_waiters();
        }
        let outcome = match ready.wait_for(|r| r.is_some()).await {
            Ok(r) => r.clone().expect("waited for a value"),
            Err(_) => Err("the target's boot was abandoned".to_string()),
        };
        match outcome {
            Ok(session) => Ok(Lease { session, id }),
            Err(why) => {
                self.forget(id).await;
                Err(PoolError::Boot(why))
            }
        }
    }

    /// Drop a lease; a failed slot goes once nobody holds a lease in it.
    async fn forget(&self, id: u64) {
        let mut slots = self.slots.lock().await;
        for slot in slots.iter_mut() {
            slot.leases.retain(|(l, _)| *l != id);
        }
        slots.retain(|s| !s.failed() || !s.leases.is_empty());
        drop(slots);
        self.released.notify_waiters();
    }

    pub async fn release(&self, lease: Lease) {
        let id = lease.id;
        drop(lease);
        self.forget(id).await;
        if !self.more_to_come() {
            self.close_idle().await;
        }
    }

    /// Tear down the targets nobody leases, once no scenario will come for them: an idle
    /// target holds its share of the host (inotify instances, see `target::capacity`) that
    /// other pools' boots wait for. Measured before: shared targets idle from 26 s to the
    /// end of an 83 s run while 20 boots waited for room.
    async fn close_idle(&self) {
        let idle: Vec<Arc<Session>> = {
            let mut slots = self.slots.lock().await;
            let mut idle = Vec::new();
            slots.retain(|slot| {
                let session = slot.ready.borrow().clone().and_then(Result::ok);
                match session {
                    Some(session) if slot.leases.is_empty() => {
                        idle.push(session);
                        false
                    }
                    _ => true,
                }
            });
            idle
        };
        let outcomes = futures_util::future::join_all(idle.into_iter().map(close_session)).await;
        let mut closed = self.closed.lock().await;
        for outcome in outcomes {
            match outcome {
                Ok(Some(hint)) => closed.0.push(hint),
                Ok(None) => {}
                Err(e) => closed.1.push(e),
            }
        }
    }

    /// Tear every target down (kept ones are left running); returns the hints for kept ones
    /// and the errors of failed removals, those of targets closed earlier included.
    pub async fn close(self) -> (Vec<String>, Vec<String>) {
        let (mut hints, mut errors) = self.closed.into_inner();
        let sessions = self.slots.into_inner().into_iter().filter_map(|slot| slot.ready.borrow().clone().and_then(Result::ok));
        for result in futures_util::future::join_all(sessions.map(close_session)).await {
            match result {
                Ok(Some(hint)) => hints.push(hint),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (hints, errors)
    }
}

/// Close a shared target's session (a kept target's hint, or why it could not be removed).
async fn close_session(session: Arc<Session>) -> Result<Option<String>, String> {
    match Arc::try_unwrap(session) {
        Ok(session) => session.close().await.map_err(|e| e.to_string()),
        // Still referenced (cannot happen once every lease is released): dropping the last
        // reference removes the target through the reaper.
        Err(_) => Err("a shared target was still in use at the end of its last scenario".to_string()),
    }
}
