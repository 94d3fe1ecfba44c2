//! The load balancer's controller: it keeps the data plane's table equal
//! to the store (binding each load balancer's address and its listeners'
//! ports), checks every target's health at its group's interval, flips a
//! target only after the group's threshold of consecutive results, ends
//! deregistrations once their delay has passed, and keeps per-minute
//! metrics of each target group.
//!
//! Health follows ALB: a newly registered target is `initial` until its
//! first successful check makes it `healthy` (or the unhealthy threshold of
//! failures makes it `unhealthy`); afterwards `HealthyThresholdCount`
//! consecutive successes make it healthy and `UnhealthyThresholdCount`
//! consecutive failures unhealthy. A group no listener routes to has its
//! targets `unused`; with health checks disabled they are `unavailable`
//! and take traffic. Consecutive counts live in memory: after a restart a
//! target keeps its recorded state and the counting starts again.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::probe::{probe, ProbeOutcome};
use super::proxy::{DataPlane, GroupMetrics};
use super::routes::Table;
use super::shapes::{TargetHealthReasonEnum as Reason, TargetHealthStateEnum as State};
use super::targets::{self, TargetRow};
use super::{listeners, table, target_groups, InstanceAddresses};
use crate::clock::Clock;
use crate::controllers::Controller;
use crate::error::ApiResult;
use crate::events::{Bus, Topic};
use crate::store::Store;

/// How load balancer addresses come to exist on this machine.
#[async_trait]
pub trait Addresses: Send + Sync {
    /// The address to bind for a load balancer's address `ip` (made local
    /// first when needed).
    async fn bind_ip(&self, ip: IpAddr) -> Result<IpAddr, String>;
    /// Undo `bind_ip` for an address no load balancer has any longer.
    async fn release_ip(&self, ip: IpAddr) -> Result<(), String>;
}

/// The machine's own: each address added to Berth's host interface (as
/// container instances' are).
#[derive(Default)]
pub struct HostAddresses(crate::runtime::hostaddr::HostAddresses);

#[async_trait]
impl Addresses for HostAddresses {
    async fn bind_ip(&self, ip: IpAddr) -> Result<IpAddr, String> {
        self.0
            .ensure(&ip.to_string())
            .await
            .map_err(|e| e.to_string())?;
        Ok(ip)
    }

    async fn release_ip(&self, ip: IpAddr) -> Result<(), String> {
        self.0
            .remove(&ip.to_string())
            .await
            .map_err(|e| e.to_string())
    }
}

/// For in-process tests: `10.a.b.c` is bound as `127.a.b.c`, which every
/// Linux machine has without changing any interface.
pub struct LoopbackAddresses;

#[async_trait]
impl Addresses for LoopbackAddresses {
    async fn bind_ip(&self, ip: IpAddr) -> Result<IpAddr, String> {
        Ok(match ip {
            IpAddr::V4(v4) => {
                let [_, a, b, c] = v4.octets();
                IpAddr::from([127, a, b, c])
            }
            v6 => v6,
        })
    }

    async fn release_ip(&self, _ip: IpAddr) -> Result<(), String> {
        Ok(())
    }
}

/// One target as the checker keys it.
type Key = (String, String, u16);

/// The consecutive results of one target's checks.
#[derive(Debug, Default, Clone)]
struct Counts {
    ok: u32,
    failed: u32,
    next_due_ms: i64,
    probing: bool,
}

/// A finished check.
struct Finished {
    key: Key,
    outcome: ProbeOutcome,
}

/// Metrics gathered since the last flush, by target group.
#[derive(Default)]
struct Pending {
    since_ms: i64,
    groups: BTreeMap<String, GroupMetrics>,
}

/// How often gathered metrics are written to the store.
const METRICS_FLUSH_MS: i64 = 10_000;

pub struct LoadBalancerController {
    store: Arc<Store>,
    bus: Arc<Bus>,
    instances: Arc<dyn InstanceAddresses>,
    plane: Arc<DataPlane>,
    addresses: Arc<dyn Addresses>,
    clock: Arc<dyn Clock>,
    counts: Mutex<HashMap<Key, Counts>>,
    finished: Arc<Mutex<Vec<Finished>>>,
    applied: Mutex<Option<Table>>,
    /// The load balancer addresses made local by this controller.
    made: Mutex<std::collections::BTreeSet<IpAddr>>,
    pending: Mutex<Pending>,
    /// The hosts file whose block names the load balancers, and the block
    /// last written.
    hosts_file: Option<std::path::PathBuf>,
    hosts_written: Mutex<Option<String>>,
}

impl LoadBalancerController {
    pub fn new(
        store: Arc<Store>,
        bus: Arc<Bus>,
        instances: Arc<dyn InstanceAddresses>,
        plane: Arc<DataPlane>,
        addresses: Arc<dyn Addresses>,
        clock: Arc<dyn Clock>,
    ) -> LoadBalancerController {
        LoadBalancerController {
            store,
            bus,
            instances,
            plane,
            addresses,
            clock,
            counts: Mutex::new(HashMap::new()),
            finished: Arc::new(Mutex::new(Vec::new())),
            applied: Mutex::new(None),
            made: Mutex::new(Default::default()),
            pending: Mutex::new(Pending::default()),
            hosts_file: None,
            hosts_written: Mutex::new(None),
        }
    }

    /// Keep a block of `path` naming every load balancer's DNS name and
    /// address, so the names resolve on this machine.
    pub fn with_hosts_file(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.hosts_file = path;
        self
    }

    /// Write the hosts file's block when the load balancers changed.
    fn keep_hosts(&self) -> anyhow::Result<()> {
        let Some(path) = &self.hosts_file else {
            return Ok(());
        };
        let (owner, names) = self.store.read(|conn| {
            let owner = crate::store::owner_in(conn)?.unwrap_or_default();
            let names: Vec<(String, String)> = super::load_balancers::all(conn)?
                .into_iter()
                .filter_map(|lb| Some((lb.address.clone(), lb.doc.dns_name.clone()?)))
                .collect();
            Ok((owner, names))
        })?;
        let block: String = names
            .iter()
            .map(|(ip, name)| format!("{ip} {name}\n"))
            .collect();
        if self.hosts_written.lock().unwrap().as_deref() == Some(block.as_str()) {
            return Ok(());
        }
        // Tried once per change of the names, whatever comes of it.
        *self.hosts_written.lock().unwrap() = Some(block.clone());
        let current = std::fs::read_to_string(path).unwrap_or_default();
        let updated = hosts_with_block(&current, &owner, &block);
        if updated != current {
            std::fs::write(path, updated).map_err(|e| {
                anyhow::anyhow!(
                    "cannot write {} to make load balancer names resolve: {e}",
                    path.display()
                )
            })?;
        }
        Ok(())
    }

    /// The data plane this controller feeds.
    pub fn plane(&self) -> &Arc<DataPlane> {
        &self.plane
    }

    /// Bring the data plane to the store's table.
    async fn apply_table(&self) -> anyhow::Result<()> {
        let table = self
            .store
            .read(|conn| table::build(conn, self.instances.as_ref()))?;
        // Listener addresses as this machine binds them.
        let mut bound = Table {
            listeners: BTreeMap::new(),
            groups: table.groups.clone(),
        };
        for (addr, l) in &table.listeners {
            match self.addresses.bind_ip(addr.ip()).await {
                Ok(ip) => {
                    bound
                        .listeners
                        .insert(SocketAddr::new(ip, addr.port()), l.clone());
                }
                Err(e) => {
                    tracing::warn!(address = %addr.ip(), error = %e, "cannot make the load balancer's address");
                }
            }
        }
        let unchanged = self.applied.lock().unwrap().as_ref() == Some(&bound);
        if unchanged {
            return Ok(());
        }
        for (addr, why) in self.plane.apply(bound.clone()).await {
            tracing::warn!(listener = %addr, error = %why, "cannot bind the listener");
        }
        *self.applied.lock().unwrap() = Some(bound);
        // Addresses of deleted load balancers go once nothing listens on them.
        let wanted: std::collections::BTreeSet<IpAddr> =
            table.listeners.keys().map(|a| a.ip()).collect();
        let gone: Vec<IpAddr> = {
            let mut made = self.made.lock().unwrap();
            let gone = made.difference(&wanted).copied().collect();
            *made = wanted;
            gone
        };
        for ip in gone {
            if let Err(e) = self.addresses.release_ip(ip).await {
                tracing::warn!(address = %ip, error = %e, "cannot remove the load balancer's address");
            }
        }
        Ok(())
    }

    /// Record finished checks, move targets between states, end
    /// deregistrations, and start the checks that are due.
    fn check(&self, now_ms: i64) -> ApiResult<()> {
        let finished: Vec<Finished> = std::mem::take(&mut *self.finished.lock().unwrap());
        let (groups, all, in_use) = self.store.read(|conn| {
            let groups: HashMap<String, target_groups::TgRow> = target_groups::all(conn)?
                .into_iter()
                .map(|g| (g.arn.clone(), g))
                .collect();
            let all = targets::all(conn)?;
            let mut in_use = HashMap::new();
            for g in groups.keys() {
                in_use.insert(
                    g.clone(),
                    !listeners::load_balancers_using(conn, g)?.is_empty(),
                );
            }
            Ok((groups, all, in_use))
        })?;
        let mut counts = self.counts.lock().unwrap();
        // Forget targets no longer registered.
        counts.retain(|k, _| {
            all.iter()
                .any(|t| t.target_group_arn == k.0 && t.id == k.1 && t.port == k.2)
        });
        let mut changes: Vec<(TargetRow, State, Option<Reason>, Option<String>)> = Vec::new();
        let mut removals: Vec<TargetRow> = Vec::new();
        let mut verdicts: HashMap<Key, ProbeOutcome> = HashMap::new();
        for f in finished {
            if let Some(c) = counts.get_mut(&f.key) {
                c.probing = false;
                match f.outcome {
                    ProbeOutcome::Healthy => {
                        c.ok += 1;
                        c.failed = 0;
                    }
                    _ => {
                        c.failed += 1;
                        c.ok = 0;
                    }
                }
            }
            verdicts.insert(f.key, f.outcome);
        }
        let mut due: Vec<(Key, SocketAddr, String, Duration, String)> = Vec::new();
        for t in &all {
            let Some(g) = groups.get(&t.target_group_arn) else {
                continue;
            };
            let key: Key = (t.target_group_arn.clone(), t.id.clone(), t.port);
            if t.state == State::Draining {
                if t.draining_until.is_some_and(|u| u <= now_ms) {
                    removals.push(t.clone());
                }
                continue;
            }
            if !in_use.get(&g.arn).copied().unwrap_or(false) {
                if t.state != State::Unused {
                    changes.push((t.clone(), State::Unused, Some(Reason::TargetNotInUse), None));
                }
                counts.remove(&key);
                continue;
            }
            if g.doc.health_check_enabled == Some(false) {
                if t.state != State::Unavailable {
                    changes.push((
                        t.clone(),
                        State::Unavailable,
                        Some(Reason::TargetHealthCheckDisabled),
                        None,
                    ));
                }
                counts.remove(&key);
                continue;
            }
            if t.state == State::Unused || t.state == State::Unavailable {
                changes.push((
                    t.clone(),
                    State::Initial,
                    Some(Reason::ElbRegistrationInProgress),
                    None,
                ));
            }
            let c = counts.entry(key.clone()).or_default();
            if let Some(outcome) = verdicts.get(&key) {
                if let Some(change) = verdict(t, g, c, outcome) {
                    changes.push(change);
                }
            }
            if !c.probing && c.next_due_ms <= now_ms {
                let interval = g.doc.health_check_interval_seconds.unwrap_or(30);
                c.next_due_ms = now_ms + interval * 1000;
                c.probing = true;
                let Some(addr) = self.store.read(|conn| {
                    table::target_address(
                        conn,
                        self.instances.as_ref(),
                        g,
                        &t.id,
                        targets::health_check_port(g, t.port),
                    )
                })?
                else {
                    c.probing = false;
                    continue;
                };
                due.push((
                    key,
                    addr,
                    g.doc
                        .health_check_path
                        .clone()
                        .unwrap_or_else(|| "/".into()),
                    Duration::from_secs(g.doc.health_check_timeout_seconds.unwrap_or(5) as u64),
                    g.doc
                        .matcher
                        .as_ref()
                        .and_then(|m| m.http_code.clone())
                        .unwrap_or_else(|| "200".into()),
                ));
            }
        }
        drop(counts);
        if !changes.is_empty() || !removals.is_empty() {
            self.store.write(|tx| {
                for (t, state, reason, description) in &changes {
                    targets::set_health(tx, t, *state, *reason, description.clone(), now_ms)?;
                }
                for t in &removals {
                    targets::remove(tx, t)?;
                }
                Ok(())
            })?;
            // Services count their tasks healthy by their targets.
            self.bus.wake(Topic::Services);
        }
        for (key, addr, path, timeout, matcher) in due {
            let finished = self.finished.clone();
            tokio::spawn(async move {
                let outcome = probe(addr, &path, timeout, &matcher).await;
                finished.lock().unwrap().push(Finished { key, outcome });
            });
        }
        Ok(())
    }

    /// Gather the data plane's counters and write them per minute now and
    /// then, with each group's healthy host count.
    fn keep_metrics(&self, now_ms: i64) -> ApiResult<()> {
        let taken = self.plane.take_metrics();
        let mut pending = self.pending.lock().unwrap();
        if pending.since_ms == 0 {
            pending.since_ms = now_ms;
        }
        for (arn, m) in taken {
            let acc = pending.groups.entry(arn).or_default();
            acc.requests += m.requests;
            acc.target_2xx += m.target_2xx;
            acc.target_3xx += m.target_3xx;
            acc.target_4xx += m.target_4xx;
            acc.target_5xx += m.target_5xx;
            acc.elb_5xx += m.elb_5xx;
            acc.target_response_time_ms += m.target_response_time_ms;
            acc.target_responses_timed += m.target_responses_timed;
        }
        if now_ms - pending.since_ms < METRICS_FLUSH_MS {
            return Ok(());
        }
        let groups = std::mem::take(&mut pending.groups);
        pending.since_ms = now_ms;
        drop(pending);
        let minute = now_ms / 60_000 * 60_000;
        self.store.write(|tx| {
            let healthy: Vec<(String, i64)> = tx
                .prepare_cached(
                    "SELECT target_group_arn, count(*) FROM elb_targets WHERE state = 'healthy' GROUP BY 1",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut arns: std::collections::BTreeSet<String> =
                groups.keys().cloned().collect();
            arns.extend(healthy.iter().map(|(a, _)| a.clone()));
            for arn in arns {
                let m = groups.get(&arn).cloned().unwrap_or_default();
                let hosts = healthy
                    .iter()
                    .find(|(a, _)| *a == arn)
                    .map_or(0, |(_, n)| *n);
                tx.prepare_cached(
                    "INSERT INTO elb_metrics (target_group_arn, minute, requests, http_2xx, http_3xx, http_4xx,
                        http_5xx, elb_5xx, response_ms_sum, responses_timed, healthy_hosts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (target_group_arn, minute) DO UPDATE SET
                        requests = requests + excluded.requests, http_2xx = http_2xx + excluded.http_2xx,
                        http_3xx = http_3xx + excluded.http_3xx, http_4xx = http_4xx + excluded.http_4xx,
                        http_5xx = http_5xx + excluded.http_5xx, elb_5xx = elb_5xx + excluded.elb_5xx,
                        response_ms_sum = response_ms_sum + excluded.response_ms_sum,
                        responses_timed = responses_timed + excluded.responses_timed,
                        healthy_hosts = max(healthy_hosts, excluded.healthy_hosts)",
                )?
                .execute(params![
                    arn,
                    minute,
                    m.requests as i64,
                    m.target_2xx as i64,
                    m.target_3xx as i64,
                    m.target_4xx as i64,
                    m.target_5xx as i64,
                    m.elb_5xx as i64,
                    m.target_response_time_ms.round() as i64,
                    m.target_responses_timed as i64,
                    hosts
                ])?;
            }
            Ok(())
        })
    }
}

/// `hosts` with this installation's block (between its markers) replaced
/// by `block`, or without it when `block` is empty; the rest untouched.
pub fn hosts_with_block(hosts: &str, owner: &str, block: &str) -> String {
    let begin = format!("# BEGIN berth load balancers {owner}");
    let end = format!("# END berth load balancers {owner}");
    let mut out = String::new();
    let mut inside = false;
    for line in hosts.lines() {
        if line == begin {
            inside = true;
        } else if line == end {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !block.is_empty() {
        out.push_str(&format!("{begin}\n{block}{end}\n"));
    }
    out
}

/// What a check's result does to a target, if anything: ALB's thresholds
/// applied to the consecutive counts.
fn verdict(
    t: &TargetRow,
    g: &target_groups::TgRow,
    c: &Counts,
    outcome: &ProbeOutcome,
) -> Option<(TargetRow, State, Option<Reason>, Option<String>)> {
    let healthy_after = g.doc.healthy_threshold_count.unwrap_or(5) as u32;
    let unhealthy_after = g.doc.unhealthy_threshold_count.unwrap_or(2) as u32;
    let failure = || -> (Reason, Option<String>) {
        match outcome {
            ProbeOutcome::ResponseCodeMismatch(code) => (
                Reason::TargetResponseCodeMismatch,
                Some(format!("Health checks failed with these codes: [{code}]")),
            ),
            ProbeOutcome::Timeout => (Reason::TargetTimeout, None),
            _ => (Reason::TargetFailedHealthChecks, None),
        }
    };
    let become_unhealthy = || {
        let (reason, description) = failure();
        (t.clone(), State::Unhealthy, Some(reason), description)
    };
    match t.state {
        State::Initial | State::Unused | State::Unavailable => {
            if c.ok >= 1 {
                Some((t.clone(), State::Healthy, None, None))
            } else if c.failed >= unhealthy_after {
                Some(become_unhealthy())
            } else if t.reason != Some(Reason::ElbInitialHealthChecking) {
                Some((
                    t.clone(),
                    State::Initial,
                    Some(Reason::ElbInitialHealthChecking),
                    None,
                ))
            } else {
                None
            }
        }
        State::Healthy => (c.failed >= unhealthy_after).then(become_unhealthy),
        State::Unhealthy => {
            if c.ok >= healthy_after {
                Some((t.clone(), State::Healthy, None, None))
            } else if c.failed > 0 {
                // The reason follows the latest failure.
                let (reason, description) = failure();
                let changed = t.reason != Some(reason)
                    || description.is_some() && t.description != description;
                changed.then(|| (t.clone(), State::Unhealthy, Some(reason), description))
            } else {
                None
            }
        }
        _ => None,
    }
}

#[async_trait]
impl Controller for LoadBalancerController {
    fn name(&self) -> &'static str {
        "load-balancers"
    }

    fn tick(&self) -> Duration {
        Duration::from_millis(250)
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let now_ms = self.clock.now_ms();
        self.check(now_ms)?;
        self.apply_table().await?;
        self.keep_metrics(now_ms)?;
        if let Err(e) = self.keep_hosts() {
            tracing::warn!(error = %e, "load balancer names do not resolve");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::hosts_with_block;

    #[test]
    fn the_hosts_block_is_replaced_and_removed_leaving_the_rest() {
        let base = "127.0.0.1 localhost\n::1 localhost\n";
        let one = hosts_with_block(base, "o1", "10.200.0.1 a.elb.amazonaws.com\n");
        assert_eq!(
            one,
            "127.0.0.1 localhost\n::1 localhost\n# BEGIN berth load balancers o1\n10.200.0.1 a.elb.amazonaws.com\n# END berth load balancers o1\n"
        );
        let other = hosts_with_block(&one, "o2", "10.201.0.1 b.elb.amazonaws.com\n");
        let two = hosts_with_block(&other, "o1", "10.200.0.2 c.elb.amazonaws.com\n");
        assert!(two.contains("b.elb.amazonaws.com") && two.contains("c.elb.amazonaws.com"));
        assert!(!two.contains("a.elb.amazonaws.com"));
        assert_eq!(
            hosts_with_block(&hosts_with_block(&two, "o1", ""), "o2", ""),
            base
        );
    }
}
