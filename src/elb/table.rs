//! The data plane's table, built from the store: every listener of every
//! load balancer on its load balancer's address, its rules in order, and
//! every target group its rules forward to with its registered targets
//! and their health.

use std::net::{IpAddr, SocketAddr};

use rusqlite::Connection;

use super::actions::{read_action, read_condition};
use super::routes::{
    Algorithm, GroupRoutes, Health, ListenerRoutes, RuleRoutes, Table, TargetRoutes,
};
use super::shapes::{TargetHealthStateEnum, TargetTypeEnum};
use super::{listeners, load_balancers, target_groups, targets, InstanceAddresses};
use crate::error::ApiResult;

/// The table as the store has it now.
pub fn build(conn: &Connection, instances: &dyn InstanceAddresses) -> ApiResult<Table> {
    let mut table = Table::default();
    for lb in load_balancers::all(conn)? {
        let Ok(ip) = lb.address.parse::<IpAddr>() else {
            continue;
        };
        for l in listeners::of_load_balancer(conn, &lb.arn)? {
            let rules = listeners::rules_of(conn, &l.arn)?
                .into_iter()
                .map(|r| RuleRoutes {
                    rule_arn: r.arn.clone(),
                    // Conditions were checked when the rule was made.
                    conditions: r
                        .doc
                        .conditions
                        .iter()
                        .flatten()
                        .filter_map(|c| read_condition(c).ok())
                        .collect(),
                    action: read_action(r.doc.actions.as_deref().unwrap_or(&[])),
                })
                .collect();
            table.listeners.insert(
                SocketAddr::new(ip, l.port()),
                ListenerRoutes {
                    listener_arn: l.arn.clone(),
                    load_balancer_arn: lb.arn.clone(),
                    protocol: l.doc.protocol.map_or("HTTP", |p| p.as_str()).to_string(),
                    idle_timeout_secs: lb.idle_timeout(),
                    rules,
                },
            );
        }
    }
    for tg in target_groups::all(conn)? {
        let mut routes = GroupRoutes {
            arn: tg.arn.clone(),
            algorithm: match tg.attribute("load_balancing.algorithm.type") {
                Some("least_outstanding_requests") => Algorithm::LeastOutstandingRequests,
                _ => Algorithm::RoundRobin,
            },
            stickiness_secs: (tg.attribute("stickiness.enabled") == Some("true"))
                .then(|| tg.number("stickiness.lb_cookie.duration_seconds", 86_400)),
            slow_start_secs: tg.number("slow_start.duration_seconds", 0),
            targets: vec![],
        };
        for t in targets::of_group(conn, &tg.arn)? {
            let Some(addr) = target_address(conn, instances, &tg, &t.id, t.port)? else {
                continue;
            };
            let health = match t.state {
                TargetHealthStateEnum::Healthy => Health::Healthy,
                TargetHealthStateEnum::Unhealthy => Health::Unhealthy,
                TargetHealthStateEnum::Draining => Health::Draining,
                // Health checks disabled: every target takes requests.
                TargetHealthStateEnum::Unavailable => Health::Healthy,
                TargetHealthStateEnum::Initial | TargetHealthStateEnum::Unused => Health::Initial,
                _ => Health::Initial,
            };
            routes.targets.push(TargetRoutes {
                addr,
                health,
                healthy_since_ms: t.healthy_since,
            });
        }
        table.groups.insert(tg.arn.clone(), routes);
    }
    Ok(table)
}

/// Where a target of `tg` is reached: its IP, or its instance's address,
/// and `port`.
pub fn target_address(
    conn: &Connection,
    instances: &dyn InstanceAddresses,
    tg: &target_groups::TgRow,
    id: &str,
    port: u16,
) -> ApiResult<Option<SocketAddr>> {
    let ip = match tg.target_type() {
        TargetTypeEnum::Ip => id.parse::<IpAddr>().ok(),
        _ => instances
            .address(conn, &tg.account, &tg.region, id)?
            .and_then(|a| a.parse().ok()),
    };
    Ok(ip.map(|ip| SocketAddr::new(ip, port)))
}
