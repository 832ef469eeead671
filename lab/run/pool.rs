//! Shared targets of one suite, leased to scenarios.
//!
//! A scenario takes the first booted target where nothing running claims what it claims
//! (ports, files, or the whole target for a `pause`); when there is none, a new target is
//! booted, up to `max_targets` (the run's `--jobs`: more targets than concurrent scenarios are
//! never useful); beyond that it waits until a lease ends. So colliding scenarios either run
//! on separate targets at the same time or one after the other on the same target, and a
//! target is reused as soon as its previous scenario is done.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{Mutex, Notify};

use super::plan::{compatible, Claim};
use crate::target::engine::Engine;
use crate::target::image::ImageRef;
use crate::target::{Target, TargetError, TargetOptions};

struct Slot {
    target: Arc<Target>,
    /// Serialises `daemon-reload` on the target: scenarios install and remove units there.
    reload: Arc<Mutex<()>>,
    /// What each current lease claims.
    leases: Vec<(u64, BTreeSet<Claim>)>,
}

pub struct Pool {
    engine: Engine,
    image: ImageRef,
    keep: bool,
    max_targets: usize,
    slots: Mutex<Vec<Slot>>,
    next_lease: std::sync::atomic::AtomicU64,
    released: Notify,
}

/// A scenario's use of a shared target; give it back with [`Pool::release`].
pub struct Lease {
    pub target: Arc<Target>,
    pub reload: Arc<Mutex<()>>,
    id: u64,
}

impl Pool {
    pub fn new(engine: Engine, image: ImageRef, keep: bool, max_targets: usize) -> Pool {
        Pool {
            engine,
            image,
            keep,
            max_targets: max_targets.max(1),
            slots: Mutex::new(Vec::new()),
            next_lease: Default::default(),
            released: Notify::new(),
        }
    }

    /// Lease a target where `claims` collide with nothing running.
    pub async fn acquire(&self, claims: &BTreeSet<Claim>) -> Result<Lease, TargetError> {
        loop {
            // Registered before looking, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut slots = self.slots.lock().await;
                let id = self.next_lease.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let free = slots.iter_mut().find(|s| s.leases.iter().all(|(_, c)| compatible(c, claims)));
                if let Some(slot) = free {
                    slot.leases.push((id, claims.clone()));
                    return Ok(Lease { target: slot.target.clone(), reload: slot.reload.clone(), id });
                }
                if slots.len() < self.max_targets {
                    // Booting under the lock keeps two scenarios from booting two targets where
                    // one would do; a boot takes well under a second.
                    let purpose = format!("run-{}-shared{}", self.image.suite, slots.len());
                    let opts = TargetOptions { keep: self.keep, purpose, ..Default::default() };
                    let target = Arc::new(Target::boot(&self.engine, &self.image, opts).await?);
                    let reload = Arc::new(Mutex::new(()));
                    slots.push(Slot { target: target.clone(), reload: reload.clone(), leases: vec![(id, claims.clone())] });
                    return Ok(Lease { target, reload, id });
                }
            }
            released.await;
        }
    }

    pub async fn release(&self, lease: Lease) {
        let mut slots = self.slots.lock().await;
        for slot in slots.iter_mut() {
            slot.leases.retain(|(id, _)| *id != lease.id);
        }
        drop(slots);
        self.released.notify_waiters();
    }

    /// Tear every target down (kept ones are left running); returns the hints for kept ones
    /// and the errors of failed removals.
    pub async fn close(self) -> (Vec<String>, Vec<String>) {
        let mut hints = Vec::new();
        let mut errors = Vec::new();
        for slot in self.slots.into_inner() {
            match Arc::try_unwrap(slot.target) {
                Ok(target) => {
                    if target.is_kept() {
                        hints.push(target.enter_hint());
                    }
                    if let Err(e) = target.teardown().await {
                        errors.push(e.to_string());
                    }
                }
                // Still referenced (cannot happen once every lease is released): dropping the
                // last reference removes it through the reaper.
                Err(_) => errors.push("a shared target was still in use at the end of the run".into()),
            }
        }
        (hints, errors)
    }
}
