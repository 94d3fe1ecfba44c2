//! Target groups: `CreateTargetGroup`, `DescribeTargetGroups`,
//! `ModifyTargetGroup`, `Describe/ModifyTargetGroupAttributes`,
//! `DeleteTargetGroup`. HTTP target groups of type `ip` or `instance`, with
//! ALB's health check defaults and bounds.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::shapes::{
    CreateTargetGroupInput, CreateTargetGroupOutput, DeleteTargetGroupInput,
    DeleteTargetGroupOutput, DescribeTargetGroupAttributesInput,
    DescribeTargetGroupAttributesOutput, DescribeTargetGroupsInput, DescribeTargetGroupsOutput,
    Matcher, ModifyTargetGroupAttributesInput, ModifyTargetGroupAttributesOutput,
    ModifyTargetGroupInput, ModifyTargetGroupOutput, ProtocolEnum, TargetGroup,
    TargetGroupAttribute, TargetGroupIpAddressTypeEnum, TargetTypeEnum,
};
use super::{arn_prefix, check_name, default_vpc, error, new_hex, page, tags, validation, Elb};
use crate::context::Ctx;
use crate::error::ApiResult;

/// A target group as stored.
#[derive(Debug, Clone)]
pub struct TgRow {
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    /// The `TargetGroup` shape, without `LoadBalancerArns` (computed from
    /// the listeners and rules that forward to it).
    pub doc: TargetGroup,
    pub attributes: BTreeMap<String, String>,
}

impl TgRow {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// An attribute holding a number, or `default`.
    pub fn number(&self, key: &str, default: u64) -> u64 {
        self.attribute(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    pub fn port(&self) -> u16 {
        self.doc.port.unwrap_or(80) as u16
    }

    pub fn target_type(&self) -> TargetTypeEnum {
        self.doc.target_type.unwrap_or_default()
    }
}

/// An HTTP target group's attributes and their defaults.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("deregistration_delay.timeout_seconds", "300"),
    ("load_balancing.algorithm.anomaly_mitigation", "off"),
    ("load_balancing.algorithm.type", "round_robin"),
    (
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
    ),
    ("slow_start.duration_seconds", "0"),
    ("stickiness.app_cookie.cookie_name", ""),
    ("stickiness.app_cookie.duration_seconds", "86400"),
    ("stickiness.enabled", "false"),
    ("stickiness.lb_cookie.duration_seconds", "86400"),
    ("stickiness.type", "lb_cookie"),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
    ),
];

fn check_attribute(key: &str, value: &str) -> Result<(), String> {
    let number = |lo: u64, hi: u64| value.parse::<u64>().is_ok_and(|n| (lo..=hi).contains(&n));
    let ok = match key {
        "deregistration_delay.timeout_seconds" => number(0, 3600),
        "slow_start.duration_seconds" => value == "0" || number(30, 900),
        "stickiness.enabled" => value == "true" || value == "false",
        "stickiness.type" => value == "lb_cookie" || value == "app_cookie",
        "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
            number(1, 604_800)
        }
        "load_balancing.algorithm.type" => [
            "round_robin",
            "least_outstanding_requests",
            "weighted_random",
        ]
        .contains(&value),
        "load_balancing.algorithm.anomaly_mitigation" => value == "on" || value == "off",
        "load_balancing.cross_zone.enabled" => {
            ["true", "false", "use_load_balancer_configuration"].contains(&value)
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "The value of '{key}' must be valid: '{value}' is not an acceptable value"
        ))
    }
}

const COLUMNS: &str = "arn, account, region, name, doc, attributes";

fn row(r: &rusqlite::Row) -> rusqlite::Result<[String; 6]> {
    Ok([
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ])
}

fn decode(raw: [String; 6]) -> ApiResult<TgRow> {
    let [arn, account, region, name, doc, attributes] = raw;
    Ok(TgRow {
        arn,
        account,
        region,
        name,
        doc: serde_json::from_str(&doc)?,
        attributes: serde_json::from_str(&attributes)?,
    })
}

pub fn load(conn: &Connection, arn: &str) -> ApiResult<Option<TgRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM elb_target_groups WHERE arn = ?1"
    ))?
    .query_row([arn], row)
    .optional()?
    .map(decode)
    .transpose()
}

/// The target group `arn` of the caller's account and region, or
/// `TargetGroupNotFound`.
pub fn require(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<TgRow> {
    load(conn, arn)?
        .filter(|t| t.account == ctx.account && t.region == ctx.region)
        .ok_or_else(|| not_found(arn))
}

pub fn not_found(arn: &str) -> crate::error::ApiError {
    error(
        "TargetGroupNotFound",
        format!("Target groups '{arn}' not found"),
    )
}

/// Every target group (of every account), oldest first.
pub fn all(conn: &Connection) -> ApiResult<Vec<TgRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_target_groups ORDER BY created_at, arn"
        ))?
        .query_map([], row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode).collect()
}

fn in_scope(conn: &Connection, ctx: &Ctx) -> ApiResult<Vec<TgRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_target_groups WHERE account = ?1 AND region = ?2 ORDER BY created_at, arn"
        ))?
        .query_map([&ctx.account, &ctx.region], row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode).collect()
}

fn save(conn: &Connection, tg: &TgRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE elb_target_groups SET doc = ?2, attributes = ?3 WHERE arn = ?1")?
        .execute(params![
            tg.arn,
            serde_json::to_string(&tg.doc)?,
            serde_json::to_string(&tg.attributes)?
        ])?;
    Ok(())
}

/// The settings a health check may be given, checked against ALB's
/// bounds.
struct HealthCheck {
    interval: Option<i64>,
    timeout: Option<i64>,
    healthy: Option<i64>,
    unhealthy: Option<i64>,
    path: Option<String>,
    port: Option<String>,
    protocol: Option<ProtocolEnum>,
    matcher: Option<Matcher>,
}

impl HealthCheck {
    /// Apply to `doc` (defaults already there), then check the result.
    fn apply(self, doc: &mut TargetGroup) -> ApiResult<()> {
        let range = |name: &str, v: Option<i64>, lo: i64, hi: i64| -> ApiResult<()> {
            match v {
                Some(n) if !(lo..=hi).contains(&n) => Err(validation(format!(
                    "{name} must be between {lo} and {hi}, but was {n}"
                ))),
                _ => Ok(()),
            }
        };
        range("Health check interval", self.interval, 5, 300)?;
        range("Health check timeout", self.timeout, 2, 120)?;
        range("Healthy threshold count", self.healthy, 2, 10)?;
        range("Unhealthy threshold count", self.unhealthy, 2, 10)?;
        if let Some(p) = &self.path {
            if !p.starts_with('/') || p.is_empty() || p.len() > 1024 {
                return Err(validation(
                    "Health check path must begin with a '/' character and can be at most 1024 characters",
                ));
            }
        }
        if let Some(p) = &self.port {
            if p != "traffic-port" && !p.parse::<u16>().is_ok_and(|n| n >= 1) {
                return Err(validation(format!(
                    "Health check port '{p}' must be 'traffic-port' or a port between 1 and 65535"
                )));
            }
        }
        if let Some(p) = self.protocol {
            if p != ProtocolEnum::Http && p != ProtocolEnum::Https {
                return Err(validation(format!(
                    "Health check protocol '{}' is not supported for target groups with the HTTP protocol",
                    p.as_str()
                )));
            }
        }
        if let Some(m) = &self.matcher {
            let code = m.http_code.as_deref().unwrap_or("");
            if !matcher_valid(code) {
                return Err(validation(format!(
                    "Health check matcher HTTP code '{code}' must be a value between 200 and 499, a list of such values (200,202) or a range (200-299)"
                )));
            }
        }
        if self.interval.is_some() {
            doc.health_check_interval_seconds = self.interval;
        }
        if self.timeout.is_some() {
            doc.health_check_timeout_seconds = self.timeout;
        }
        if self.healthy.is_some() {
            doc.healthy_threshold_count = self.healthy;
        }
        if self.unhealthy.is_some() {
            doc.unhealthy_threshold_count = self.unhealthy;
        }
        if self.path.is_some() {
            doc.health_check_path = self.path;
        }
        if self.port.is_some() {
            doc.health_check_port = self.port;
        }
        if self.protocol.is_some() {
            doc.health_check_protocol = self.protocol;
        }
        if let Some(m) = self.matcher {
            doc.matcher = Some(Matcher {
                http_code: m.http_code,
                grpc_code: None,
            });
        }
        let interval = doc.health_check_interval_seconds.unwrap_or(30);
        let timeout = doc.health_check_timeout_seconds.unwrap_or(5);
        if timeout >= interval {
            return Err(validation(format!(
                "Health check timeout '{timeout}' must be smaller than the interval '{interval}'"
            )));
        }
        Ok(())
    }
}

/// Whether `code` is an HTTP code matcher ALB accepts: `200`, `200,202`,
/// `200-299`, values 200 to 499.
pub fn matcher_valid(code: &str) -> bool {
    let value = |s: &str| s.parse::<u16>().is_ok_and(|n| (200..=499).contains(&n));
    !code.is_empty()
        && code.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => value(a) && value(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok(),
            None => value(part),
        })
}

pub fn create(
    e: &Elb,
    ctx: &Ctx,
    req: CreateTargetGroupInput,
) -> ApiResult<CreateTargetGroupOutput> {
    check_name("Target group", &req.name)?;
    let target_type = req.target_type.unwrap_or(TargetTypeEnum::Instance);
    if !matches!(target_type, TargetTypeEnum::Instance | TargetTypeEnum::Ip) {
        return Err(validation(format!(
            "Berth serves target groups of type 'instance' and 'ip'; '{}' is not supported yet",
            target_type.as_str()
        )));
    }
    let protocol = req
        .protocol
        .ok_or_else(|| validation("A protocol must be specified"))?;
    if protocol != ProtocolEnum::Http {
        return Err(error(
            "UnsupportedProtocol",
            format!(
                "Berth serves HTTP target groups; protocol '{}' is not supported yet",
                protocol.as_str()
            ),
        ));
    }
    let port = req
        .port
        .ok_or_else(|| validation("A port must be specified"))?;
    if !(1..=65535).contains(&port) {
        return Err(validation(format!(
            "Port '{port}' must be between 1 and 65535"
        )));
    }
    if let Some(v) = &req.protocol_version {
        if !["HTTP1", "HTTP2", "GRPC"].contains(&v.as_str()) {
            return Err(validation(format!(
                "Protocol version '{v}' must be one of HTTP1, HTTP2, GRPC"
            )));
        }
    }
    let vpc = req
        .vpc_id
        .clone()
        .unwrap_or_else(|| default_vpc(&ctx.account, &ctx.region));
    let tags = req.tags.clone().unwrap_or_default();
    tags::check(&tags)?;
    let mut doc = TargetGroup {
        health_check_enabled: Some(req.health_check_enabled.unwrap_or(true)),
        health_check_interval_seconds: Some(30),
        health_check_path: Some("/".into()),
        health_check_port: Some("traffic-port".into()),
        health_check_protocol: Some(ProtocolEnum::Http),
        health_check_timeout_seconds: Some(5),
        healthy_threshold_count: Some(5),
        ip_address_type: Some(
            req.ip_address_type
                .unwrap_or(TargetGroupIpAddressTypeEnum::Ipv4),
        ),
        load_balancer_arns: None,
        matcher: Some(Matcher {
            http_code: Some("200".into()),
            grpc_code: None,
        }),
        port: Some(port),
        protocol: Some(protocol),
        protocol_version: Some(
            req.protocol_version
                .clone()
                .unwrap_or_else(|| "HTTP1".into()),
        ),
        target_type: Some(target_type),
        unhealthy_threshold_count: Some(2),
        vpc_id: Some(vpc),
        ..Default::default()
    };
    HealthCheck {
        interval: req.health_check_interval_seconds,
        timeout: req.health_check_timeout_seconds,
        healthy: req.healthy_threshold_count,
        unhealthy: req.unhealthy_threshold_count,
        path: req.health_check_path.clone(),
        port: req.health_check_port.clone(),
        protocol: req.health_check_protocol,
        matcher: req.matcher.clone(),
    }
    .apply(&mut doc)?;
    e.store.write(|tx| {
        let existing = tx
            .prepare_cached(
                "SELECT arn FROM elb_target_groups WHERE account = ?1 AND region = ?2 AND name = ?3",
            )?
            .query_row([&ctx.account, &ctx.region, &req.name], |r| r.get::<_, String>(0))
            .optional()?;
        if let Some(arn) = existing {
            let tg = require(tx, ctx, &arn)?;
            let mut mine = doc.clone();
            mine.target_group_arn = tg.doc.target_group_arn.clone();
            mine.target_group_name = tg.doc.target_group_name.clone();
            if mine == tg.doc {
                return Ok(CreateTargetGroupOutput {
                    target_groups: Some(vec![with_load_balancers(tx, tg)?]),
                });
            }
            return Err(error(
                "DuplicateTargetGroupName",
                "A target group with the same name exists, but with different settings",
            ));
        }
        let arn = format!("{}targetgroup/{}/{}", arn_prefix(ctx), req.name, new_hex(16));
        doc.target_group_arn = Some(arn.clone());
        doc.target_group_name = Some(req.name.clone());
        let attributes: BTreeMap<String, String> = ATTRIBUTES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tx.prepare_cached(
            "INSERT INTO elb_target_groups (arn, account, region, name, created_at, doc, attributes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            arn,
            ctx.account,
            ctx.region,
            req.name,
            ctx.now_millis(),
            serde_json::to_string(&doc)?,
            serde_json::to_string(&attributes)?
        ])?;
        tags::set(tx, &arn, &tags)?;
        Ok(CreateTargetGroupOutput {
            target_groups: Some(vec![TargetGroup {
                load_balancer_arns: Some(vec![]),
                ..doc
            }]),
        })
    })
}

/// The `TargetGroup` shape with the load balancers that route to it.
fn with_load_balancers(conn: &Connection, tg: TgRow) -> ApiResult<TargetGroup> {
    let lbs = super::listeners::load_balancers_using(conn, &tg.arn)?;
    Ok(TargetGroup {
        load_balancer_arns: Some(lbs),
        ..tg.doc
    })
}

pub fn describe(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeTargetGroupsInput,
) -> ApiResult<DescribeTargetGroupsOutput> {
    let arns = req.target_group_arns.unwrap_or_default();
    let names = req.names.unwrap_or_default();
    let given = [
        !arns.is_empty(),
        !names.is_empty(),
        req.load_balancer_arn.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(validation(
            "Only one of load balancer ARN, target group ARNs or names can be specified",
        ));
    }
    e.store.read(|conn| {
        let all = in_scope(conn, ctx)?;
        let chosen: Vec<TgRow> = if !arns.is_empty() {
            arns.iter()
                .map(|a| {
                    all.iter()
                        .find(|t| &t.arn == a)
                        .cloned()
                        .ok_or_else(|| not_found(a))
                })
                .collect::<ApiResult<_>>()?
        } else if !names.is_empty() {
            names
                .iter()
                .map(|n| {
                    all.iter().find(|t| &t.name == n).cloned().ok_or_else(|| {
                        error(
                            "TargetGroupNotFound",
                            format!("Target groups '[{n}]' not found"),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?
        } else if let Some(lb) = &req.load_balancer_arn {
            super::load_balancers::require(conn, ctx, lb)?;
            let used = super::listeners::target_groups_of(conn, lb)?;
            all.into_iter().filter(|t| used.contains(&t.arn)).collect()
        } else {
            all
        };
        let (items, next) = page(chosen, req.marker.as_deref(), req.page_size)?;
        Ok(DescribeTargetGroupsOutput {
            target_groups: Some(
                items
                    .into_iter()
                    .map(|t| with_load_balancers(conn, t))
                    .collect::<ApiResult<_>>()?,
            ),
            next_marker: next,
        })
    })
}

pub fn modify(
    e: &Elb,
    ctx: &Ctx,
    req: ModifyTargetGroupInput,
) -> ApiResult<ModifyTargetGroupOutput> {
    e.store.write(|tx| {
        let mut tg = require(tx, ctx, &req.target_group_arn)?;
        if let Some(on) = req.health_check_enabled {
            tg.doc.health_check_enabled = Some(on);
        }
        HealthCheck {
            interval: req.health_check_interval_seconds,
            timeout: req.health_check_timeout_seconds,
            healthy: req.healthy_threshold_count,
            unhealthy: req.unhealthy_threshold_count,
            path: req.health_check_path.clone(),
            port: req.health_check_port.clone(),
            protocol: req.health_check_protocol,
            matcher: req.matcher.clone(),
        }
        .apply(&mut tg.doc)?;
        save(tx, &tg)?;
        Ok(ModifyTargetGroupOutput {
            target_groups: Some(vec![with_load_balancers(tx, tg)?]),
        })
    })
}

fn attribute_list(attrs: &BTreeMap<String, String>) -> Vec<TargetGroupAttribute> {
    attrs
        .iter()
        .map(|(k, v)| TargetGroupAttribute {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub fn describe_attributes(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeTargetGroupAttributesInput,
) -> ApiResult<DescribeTargetGroupAttributesOutput> {
    e.store.read(|conn| {
        let tg = require(conn, ctx, &req.target_group_arn)?;
        Ok(DescribeTargetGroupAttributesOutput {
            attributes: Some(attribute_list(&tg.attributes)),
        })
    })
}

pub fn modify_attributes(
    e: &Elb,
    ctx: &Ctx,
    req: ModifyTargetGroupAttributesInput,
) -> ApiResult<ModifyTargetGroupAttributesOutput> {
    e.store.write(|tx| {
        let mut tg = require(tx, ctx, &req.target_group_arn)?;
        for a in &req.attributes {
            let key = a.key.clone().unwrap_or_default();
            let value = a.value.clone().unwrap_or_default();
            if !tg.attributes.contains_key(&key) {
                return Err(error(
                    "InvalidConfigurationRequest",
                    format!("Key {key} not valid"),
                ));
            }
            check_attribute(&key, &value).map_err(validation)?;
            tg.attributes.insert(key, value);
        }
        save(tx, &tg)?;
        Ok(ModifyTargetGroupAttributesOutput {
            attributes: Some(attribute_list(&tg.attributes)),
        })
    })
}

pub fn delete(
    e: &Elb,
    ctx: &Ctx,
    req: DeleteTargetGroupInput,
) -> ApiResult<DeleteTargetGroupOutput> {
    e.store.write(|tx| {
        let Some(tg) = load(tx, &req.target_group_arn)?
            .filter(|t| t.account == ctx.account && t.region == ctx.region)
        else {
            return Ok(DeleteTargetGroupOutput {});
        };
        if !super::listeners::load_balancers_using(tx, &tg.arn)?.is_empty() {
            return Err(error(
                "ResourceInUse",
                format!(
                    "Target group '{}' is currently in use by a listener or a rule",
                    tg.arn
                ),
            ));
        }
        super::targets::forget_group(tx, &tg.arn)?;
        tx.prepare_cached("DELETE FROM elb_target_groups WHERE arn = ?1")?
            .execute([&tg.arn])?;
        tags::set(tx, &tg.arn, &[])?;
        Ok(DeleteTargetGroupOutput {})
    })
}

#[cfg(test)]
mod tests {
    use super::matcher_valid;

    #[test]
    fn matchers_as_alb_takes_them() {
        assert!(matcher_valid("200"));
        assert!(matcher_valid("200,202"));
        assert!(matcher_valid("200-299"));
        assert!(!matcher_valid("199"));
        assert!(!matcher_valid("500"));
        assert!(!matcher_valid("299-200"));
        assert!(!matcher_valid(""));
        assert!(!matcher_valid("abc"));
    }
}
