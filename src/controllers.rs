//! One runtime for every controller: the task agent, the fleet and managed
//! scaling, the disconnected-agent janitor, metering, and those to come.
//!
//! A controller is level-triggered: each [`Controller::pass`] re-reads
//! what it acts on (desired and observed state) and does the next steps,
//! so running it again after a crash, or twice, is harmless. The
//! [`Runner`] runs each controller's passes one at a time: at once when its
//! topic on the bus is woken (with the keys named since the last pass), and
//! on its tick otherwise; after a failed pass it backs off (doubling, up to
//! a limit) and tries again; it records every pass in the metrics; on
//! shutdown it lets the pass under way finish and stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::Wake;
use crate::metrics::Metrics;

#[async_trait]
pub trait Controller: Send + Sync + 'static {
    /// Its name in logs and metrics.
    fn name(&self) -> &'static str;
    /// How long it waits for a wake-up before it runs anyway.
    fn tick(&self) -> Duration;
    /// One pass. `woken` names what changed since the last pass, when
    /// whoever woke it said (it may look at everything regardless).
    async fn pass(&self, woken: Vec<String>) -> anyhow::Result<()>;
}

/// The first wait after a failed pass, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

pub struct Runner {
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    loops: Mutex<Vec<JoinHandle<()>>>,
}

impl Runner {
    pub fn new(metrics: Arc<Metrics>) -> Runner {
        Runner {
            metrics,
            stop: watch::channel(false).0,
            loops: Mutex::new(Vec::new()),
        }
    }

    /// Run `controller`'s passes, woken by `wake`, until shutdown.
    pub fn start(&self, controller: Arc<dyn Controller>, wake: Arc<Wake>) {
        let metrics = self.metrics.clone();
        let mut stop = self.stop.subscribe();
        let handle = tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let woken = wake.take_keys();
                let t0 = Instant::now();
                let result = controller.pass(woken).await;
                metrics.controller_pass(controller.name(), t0.elapsed(), result.is_err());
                let wait = match result {
                    Ok(()) => {
                        failures = 0;
                        controller.tick()
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let backoff = backoff(failures);
                        tracing::warn!(controller = controller.name(), error = %e,
                            retry_in_ms = backoff.as_millis() as u64, "pass failed");
                        backoff
                    }
                };
                tokio::select! {
                    _ = wake.notified(), if failures == 0 => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
            }
        });
        self.loops.lock().unwrap().push(handle);
    }

    /// Stop every controller once its pass under way has finished.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let loops: Vec<_> = self.loops.lock().unwrap().drain(..).collect();
        for l in loops {
            let _ = l.await;
        }
    }
}

/// The wait after `failures` failed passes in a row.
fn backoff(failures: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counter {
        passes: AtomicUsize,
        fail_first: usize,
        seen: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Controller for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn tick(&self) -> Duration {
            Duration::from_secs(3600)
        }
        async fn pass(&self, woken: Vec<String>) -> anyhow::Result<()> {
            let n = self.passes.fetch_add(1, Ordering::SeqCst);
            self.seen.lock().unwrap().extend(woken);
            anyhow::ensure!(n >= self.fail_first, "not yet");
            Ok(())
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_limit() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(40), BACKOFF_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn passes_run_on_wake_ups_retry_after_failures_and_stop_on_shutdown() {
        let metrics = Arc::new(Metrics::default());
        let runner = Runner::new(metrics.clone());
        let c = Arc::new(Counter {
            passes: AtomicUsize::new(0),
            fail_first: 2,
            seen: Mutex::default(),
        });
        let wake = Arc::new(Wake::default());
        runner.start(c.clone(), wake.clone());
        // The first pass and two retries (100 ms, then 200 ms later).
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(c.passes.load(Ordering::SeqCst), 3);
        // Succeeded: now it waits for its tick, or a wake-up.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(c.passes.load(Ordering::SeqCst), 3);
        wake.key("task-1");
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(c.passes.load(Ordering::SeqCst), 4);
        assert_eq!(*c.seen.lock().unwrap(), ["task-1"]);
        runner.shutdown().await;
        wake.notify();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(c.passes.load(Ordering::SeqCst), 4, "stopped");
        let text = metrics.encode();
        assert!(
            text.contains("berth_controller_passes_total{controller=\"counter\"} 4"),
            "{text}"
        );
        assert!(text.contains("berth_controller_failures_total{controller=\"counter\"} 2"));
    }
}
