//! Steering the load while a run goes on: pause/resume every node, and change
//! how many nodes run (the dashboard's space, `+` and `-`).
//!
//! Nodes check it once per cycle, before starting one: two relaxed atomic
//! loads on the fast path. Node `id` runs while `id < target`; the engine
//! spawns nodes up to the target and nodes above it retire on their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most nodes a run may grow to with `+`.
pub const MAX_NODES: u32 = 10_000;

#[derive(Debug)]
struct Inner {
    paused: AtomicBool,
    /// Nodes that should run; 0 until the engine starts.
    target: AtomicU32,
    /// Woken when `paused` or `target` changes (nodes waiting in [`LoadControl::wait`]).
    nodes: Notify,
    /// Woken when `target` changes (the engine spawns nodes).
    engine: Notify,
}

/// Shared handle to pause the load and change the node count.
#[derive(Debug, Clone)]
pub struct LoadControl(Arc<Inner>);

impl Default for LoadControl {
    fn default() -> Self {
        LoadControl(Arc::new(Inner {
            paused: AtomicBool::new(false),
            target: AtomicU32::new(0),
            nodes: Notify::new(),
            engine: Notify::new(),
        }))
    }
}

impl LoadControl {
    /// Whether the load is paused.
    pub fn is_paused(&self) -> bool {
        self.0.paused.load(Ordering::Relaxed)
    }

    /// Pause (nodes finish their current cycle, then wait) or resume.
    pub fn set_paused(&self, paused: bool) {
        self.0.paused.store(paused, Ordering::Relaxed);
        self.0.nodes.notify_waiters();
    }

    /// Nodes that should be running (0 before the engine starts).
    pub fn target(&self) -> u32 {
        self.0.target.load(Ordering::Relaxed)
    }

    /// Change the node count by `delta`, keeping it within 1..=[`MAX_NODES`].
    /// Returns the new target. Does nothing before the engine has started.
    pub fn add_nodes(&self, delta: i32) -> u32 {
        let r = self
            .0
            .target
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t > 0).then(|| t.saturating_add_signed(delta).clamp(1, MAX_NODES))
            });
        self.0.nodes.notify_waiters();
        self.0.engine.notify_one();
        match r {
            Ok(old) => old.saturating_add_signed(delta).clamp(1, MAX_NODES),
            Err(t) => t,
        }
    }

    /// Set by the engine at start.
    pub(crate) fn init(&self, nodes: u32) {
        self.0.target.store(nodes.max(1), Ordering::Relaxed);
    }

    /// Wait until the target changes (engine side).
    pub(crate) async fn changed(&self) {
        self.0.engine.notified().await;
    }

    /// Fast check at the top of a node's cycle: true when node `id` must not
    /// simply start its next cycle (paused, or above the target).
    #[inline]
    pub(crate) fn blocks(&self, id: u32) -> bool {
        self.is_paused() || id >= self.target()
    }

    /// Slow path after [`Self::blocks`]: wait while paused. Returns true when
    /// node `id` must end (it is above the target, or the run stops).
    pub(crate) async fn wait(&self, id: u32, stop: &CancellationToken) -> bool {
        loop {
            let woken = self.0.nodes.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if id >= self.target() || stop.is_cancelled() {
                return true;
            }
            if !self.is_paused() {
                return false;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return true,
                _ = woken => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_stays_within_bounds_and_waits_for_the_engine() {
        let l = LoadControl::default();
        assert_eq!(l.add_nodes(1), 0, "no change before the engine starts");
        l.init(3);
        assert_eq!(l.add_nodes(2), 5);
        assert_eq!(l.add_nodes(-10), 1);
        assert!(l.blocks(1));
        assert!(!l.blocks(0));
        assert_eq!(l.add_nodes(i32::MAX), MAX_NODES);
    }

    #[tokio::test]
    async fn paused_nodes_wait_until_resumed_or_retired() {
        let l = LoadControl::default();
        l.init(2);
        l.set_paused(true);
        let stop = CancellationToken::new();
        let (l2, s2) = (l.clone(), stop.clone());
        let h = tokio::spawn(async move { l2.wait(1, &s2).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!h.is_finished());
        l.set_paused(false);
        assert!(!h.await.unwrap(), "resumed, not retired");
        l.set_paused(true);
        let (l2, s2) = (l.clone(), stop.clone());
        let h = tokio::spawn(async move { l2.wait(1, &s2).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        l.add_nodes(-1);
        assert!(
            h.await.unwrap(),
            "node 1 retires when the target drops to 1"
        );
    }
}
