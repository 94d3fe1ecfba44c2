//! The one event bus between services and the controllers that act on what
//! they record. A service that changes what a controller watches says so
//! with [`Bus::wake`] (or [`Bus::wake_key`], naming what changed); nobody
//! calls into another service's internals to make it act. Events are hints:
//! every controller is level-triggered and also runs on a tick, so a lost
//! or merged event costs only latency.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A task's desired or observed state: the agent has work.
    Tasks,
    /// An Auto Scaling group, its instances, or tasks waiting for capacity:
    /// the fleet and managed scaling have work.
    Fleet,
    /// Tasks stopped: their usage is to be frozen.
    Metering,
    /// A service or its tasks changed: the service scheduler has work.
    Services,
    /// Remote agents' heartbeats (the janitor runs on its tick).
    Janitor,
    /// A load balancer, listener, rule, target group or target changed:
    /// the data plane applies it.
    LoadBalancers,
    /// Images or repositories were deleted, or a lifecycle policy changed:
    /// the registry's collector has work.
    Registry,
}

/// One topic's wake-up: a notification, and the keys named since the last
/// pass took them.
#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    keys: Mutex<BTreeSet<String>>,
}

impl Wake {
    /// Wake the watcher (it looks at everything).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// Wake the watcher about `key` in particular.
    pub fn key(&self, key: &str) {
        self.keys.lock().unwrap().insert(key.to_string());
        self.notify.notify_one();
    }

    /// Wait for the next wake-up.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The keys named since the last call.
    pub fn take_keys(&self) -> Vec<String> {
        std::mem::take(&mut *self.keys.lock().unwrap())
            .into_iter()
            .collect()
    }
}

/// Every topic's wake-up, shared by the services and the controllers.
#[derive(Debug, Default)]
pub struct Bus {
    topics: Mutex<HashMap<Topic, Arc<Wake>>>,
}

impl Bus {
    pub fn new() -> Arc<Bus> {
        Arc::new(Bus::default())
    }

    /// The wake-up of a topic, for the controller that watches it.
    pub fn topic(&self, topic: Topic) -> Arc<Wake> {
        self.topics
            .lock()
            .unwrap()
            .entry(topic)
            .or_default()
            .clone()
    }

    pub fn wake(&self, topic: Topic) {
        self.topic(topic).notify();
    }

    pub fn wake_key(&self, topic: Topic, key: &str) {
        self.topic(topic).key(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost_and_keys_are_taken_once() {
        let bus = Bus::new();
        let w = bus.topic(Topic::Fleet);
        bus.wake_key(Topic::Fleet, "asg-1");
        bus.wake_key(Topic::Fleet, "asg-2");
        bus.wake_key(Topic::Fleet, "asg-1");
        tokio::time::timeout(std::time::Duration::from_secs(1), w.notified())
            .await
            .expect("woken");
        assert_eq!(w.take_keys(), ["asg-1", "asg-2"]);
        assert!(w.take_keys().is_empty());
    }
}
