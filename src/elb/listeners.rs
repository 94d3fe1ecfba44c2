//! Listeners and rules: `CreateListener`, `DescribeListeners`,
//! `ModifyListener`, `DeleteListener`, `CreateRule`, `DescribeRules`,
//! `ModifyRule`, `DeleteRule`, `SetRulePriorities` (tables
//! `elb_listeners`, `elb_rules`).
//!
//! A listener's default actions are also its default rule (a row with
//! `is_default`), which `DescribeRules` lists last, as ALB does. A target
//! group belongs to at most one load balancer: the one whose listeners or
//! rules forward to it.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::actions::{normalise_actions, normalise_conditions};
use super::load_balancers::{self, LbRow};
use super::shapes::{
    Action, ActionTypeEnum, CreateListenerInput, CreateListenerOutput, CreateRuleInput,
    CreateRuleOutput, DeleteListenerInput, DeleteListenerOutput, DeleteRuleInput, DeleteRuleOutput,
    DescribeListenersInput, DescribeListenersOutput, DescribeRulesInput, DescribeRulesOutput,
    Listener, ModifyListenerInput, ModifyListenerOutput, ModifyRuleInput, ModifyRuleOutput,
    ProtocolEnum, Rule, SetRulePrioritiesInput, SetRulePrioritiesOutput, TargetGroupTuple,
};
use super::{error, new_hex, page, tags, target_groups, validation, Elb};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// ALB's quotas on listeners and rules of one load balancer.
const MAX_LISTENERS: usize = 50;
const MAX_RULES: usize = 100;

/// A listener as stored.
#[derive(Debug, Clone)]
pub struct ListenerRow {
    pub arn: String,
    pub load_balancer_arn: String,
    pub doc: Listener,
}

impl ListenerRow {
    pub fn port(&self) -> u16 {
        self.doc.port.unwrap_or(80) as u16
    }
}

/// A rule as stored.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub arn: String,
    pub listener_arn: String,
    pub is_default: bool,
    pub priority: i64,
    pub doc: Rule,
}

fn listener_row(r: &rusqlite::Row) -> rusqlite::Result<(String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn decode_listener(raw: (String, String, String)) -> ApiResult<ListenerRow> {
    Ok(ListenerRow {
        arn: raw.0,
        load_balancer_arn: raw.1,
        doc: serde_json::from_str(&raw.2)?,
    })
}

fn rule_row(r: &rusqlite::Row) -> rusqlite::Result<(String, String, bool, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode_rule(raw: (String, String, bool, i64, String)) -> ApiResult<RuleRow> {
    Ok(RuleRow {
        arn: raw.0,
        listener_arn: raw.1,
        is_default: raw.2,
        priority: raw.3,
        doc: serde_json::from_str(&raw.4)?,
    })
}

fn not_found(arn: &str) -> ApiError {
    error("ListenerNotFound", format!("Listener '{arn}' not found"))
}

fn rule_not_found(arn: &str) -> ApiError {
    error("RuleNotFound", format!("Rule '{arn}' not found"))
}

pub fn load(conn: &Connection, arn: &str) -> ApiResult<Option<ListenerRow>> {
    conn.prepare_cached("SELECT arn, load_balancer_arn, doc FROM elb_listeners WHERE arn = ?1")?
        .query_row([arn], listener_row)
        .optional()?
        .map(decode_listener)
        .transpose()
}

/// The listener `arn` and its load balancer, in the caller's account and
/// region, or `ListenerNotFound`.
pub fn require(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<(ListenerRow, LbRow)> {
    let l = load(conn, arn)?.ok_or_else(|| not_found(arn))?;
    let lb =
        load_balancers::require(conn, ctx, &l.load_balancer_arn).map_err(|_| not_found(arn))?;
    Ok((l, lb))
}

/// The listeners of `lb_arn`, by port.
pub fn of_load_balancer(conn: &Connection, lb_arn: &str) -> ApiResult<Vec<ListenerRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(
            "SELECT arn, load_balancer_arn, doc FROM elb_listeners WHERE load_balancer_arn = ?1 ORDER BY port",
        )?
        .query_map([lb_arn], listener_row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode_listener).collect()
}

/// The rules of `listener_arn` in the order they are tried: by priority,
/// the default rule last.
pub fn rules_of(conn: &Connection, listener_arn: &str) -> ApiResult<Vec<RuleRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(
            "SELECT arn, listener_arn, is_default, priority, doc FROM elb_rules
             WHERE listener_arn = ?1 ORDER BY is_default, priority",
        )?
        .query_map([listener_arn], rule_row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode_rule).collect()
}

fn load_rule(conn: &Connection, arn: &str) -> ApiResult<Option<RuleRow>> {
    conn.prepare_cached(
        "SELECT arn, listener_arn, is_default, priority, doc FROM elb_rules WHERE arn = ?1",
    )?
    .query_row([arn], rule_row)
    .optional()?
    .map(decode_rule)
    .transpose()
}

/// The rule `arn` in the caller's account and region, or `RuleNotFound`.
pub fn require_rule(
    conn: &Connection,
    ctx: &Ctx,
    arn: &str,
) -> ApiResult<(RuleRow, ListenerRow, LbRow)> {
    let r = load_rule(conn, arn)?.ok_or_else(|| rule_not_found(arn))?;
    let (l, lb) = require(conn, ctx, &r.listener_arn).map_err(|_| rule_not_found(arn))?;
    Ok((r, l, lb))
}

/// The load balancers whose listeners or rules forward to `tg_arn`.
pub fn load_balancers_using(conn: &Connection, tg_arn: &str) -> ApiResult<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT DISTINCT l.load_balancer_arn FROM elb_rules r JOIN elb_listeners l ON l.arn = r.listener_arn
             WHERE instr(r.target_groups, ' ' || ?1 || ' ') > 0 ORDER BY 1",
        )?
        .query_map([tg_arn], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The target groups `lb_arn`'s listeners and rules forward to.
pub fn target_groups_of(conn: &Connection, lb_arn: &str) -> ApiResult<BTreeSet<String>> {
    let lists: Vec<String> = conn
        .prepare_cached(
            "SELECT r.target_groups FROM elb_rules r JOIN elb_listeners l ON l.arn = r.listener_arn
             WHERE l.load_balancer_arn = ?1",
        )?
        .query_map([lb_arn], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(lists
        .iter()
        .flat_map(|l| l.split_whitespace().map(String::from))
        .collect())
}

/// Every listener of every load balancer.
pub fn all(conn: &Connection) -> ApiResult<Vec<ListenerRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(
            "SELECT arn, load_balancer_arn, doc FROM elb_listeners ORDER BY created_at, arn",
        )?
        .query_map([], listener_row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode_listener).collect()
}

/// Delete every listener (and rule) of a load balancer being deleted.
pub fn delete_all_of(conn: &Connection, lb_arn: &str) -> ApiResult<()> {
    for l in of_load_balancer(conn, lb_arn)? {
        delete_listener_rows(conn, &l.arn)?;
    }
    Ok(())
}

fn delete_listener_rows(conn: &Connection, arn: &str) -> ApiResult<()> {
    for r in rules_of(conn, arn)? {
        tags::set(conn, &r.arn, &[])?;
    }
    conn.prepare_cached("DELETE FROM elb_rules WHERE listener_arn = ?1")?
        .execute([arn])?;
    conn.prepare_cached("DELETE FROM elb_listeners WHERE arn = ?1")?
        .execute([arn])?;
    tags::set(conn, arn, &[])?;
    Ok(())
}

/// The target groups of checked actions exist in the caller's account
/// and region and belong to no other load balancer.
fn check_groups(conn: &Connection, ctx: &Ctx, lb_arn: &str, groups: &[String]) -> ApiResult<()> {
    let mut elsewhere = Vec::new();
    for g in groups {
        target_groups::require(conn, ctx, g)?;
        if load_balancers_using(conn, g)?.iter().any(|l| l != lb_arn) {
            elsewhere.push(g.clone());
        }
    }
    if !elsewhere.is_empty() {
        return Err(error(
            "TargetGroupAssociationLimit",
            format!(
                "The following target groups cannot be associated with more than one load balancer: {}",
                elsewhere.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Check actions, normalise them, and check the groups they name.
fn actions_for(
    conn: &Connection,
    ctx: &Ctx,
    lb_arn: &str,
    actions: &mut [Action],
) -> ApiResult<String> {
    let groups = normalise_actions(actions)?;
    check_groups(conn, ctx, lb_arn, &groups)?;
    Ok(spaced(&groups))
}

fn spaced(groups: &[String]) -> String {
    if groups.is_empty() {
        String::new()
    } else {
        format!(" {} ", groups.join(" "))
    }
}

fn check_protocol(protocol: ProtocolEnum) -> ApiResult<()> {
    match protocol {
        ProtocolEnum::Http => Ok(()),
        ProtocolEnum::Https => Err(error(
            "UnsupportedProtocol",
            "Berth serves HTTP listeners; HTTPS listeners (with certificates) are not supported yet",
        )),
        other => Err(validation(format!(
            "Listener protocol '{}' must be one of 'HTTPS, HTTP'",
            other.as_str()
        ))),
    }
}

fn check_port(port: i64) -> ApiResult<()> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(validation(format!(
            "Port '{port}' must be between 1 and 65535"
        )))
    }
}

/// The id parts of a load balancer's ARN: `app/<name>/<id>`.
fn lb_path(lb_arn: &str) -> &str {
    lb_arn.split_once(":loadbalancer/").map_or("", |(_, p)| p)
}

fn insert_rule(conn: &Connection, r: &RuleRow, groups: &str) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO elb_rules (arn, listener_arn, is_default, priority, target_groups, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.arn,
        r.listener_arn,
        r.is_default,
        r.priority,
        groups,
        serde_json::to_string(&r.doc)?
    ])?;
    Ok(())
}

fn save_rule(conn: &Connection, r: &RuleRow, groups: &str) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE elb_rules SET priority = ?2, target_groups = ?3, doc = ?4 WHERE arn = ?1",
    )?
    .execute(params![
        r.arn,
        r.priority,
        groups,
        serde_json::to_string(&r.doc)?
    ])?;
    Ok(())
}

fn rule_arn(listener_arn: &str) -> String {
    format!(
        "{}/{}",
        listener_arn.replacen(":listener/", ":listener-rule/", 1),
        new_hex(16)
    )
}

pub fn create(e: &Elb, ctx: &Ctx, req: CreateListenerInput) -> ApiResult<CreateListenerOutput> {
    let protocol = req.protocol.unwrap_or(ProtocolEnum::Http);
    check_protocol(protocol)?;
    let port = req
        .port
        .ok_or_else(|| validation("A listener port must be specified"))?;
    check_port(port)?;
    let tags = req.tags.clone().unwrap_or_default();
    tags::check(&tags)?;
    e.store.write(|tx| {
        let lb = load_balancers::require(tx, ctx, &req.load_balancer_arn)?;
        let mut actions = req.default_actions.clone();
        let groups = actions_for(tx, ctx, &lb.arn, &mut actions)?;
        let existing = of_load_balancer(tx, &lb.arn)?;
        if let Some(same) = existing.iter().find(|l| l.doc.port == Some(port)) {
            if same.doc.protocol == Some(protocol) && same.doc.default_actions.as_ref() == Some(&actions) {
                return Ok(CreateListenerOutput {
                    listeners: Some(vec![same.doc.clone()]),
                });
            }
            return Err(error(
                "DuplicateListener",
                "A listener already exists on this port for this load balancer",
            ));
        }
        if existing.len() >= MAX_LISTENERS {
            return Err(error(
                "TooManyListeners",
                format!("You've reached the limit on the number of listeners per load balancer ({MAX_LISTENERS})"),
            ));
        }
        let arn = format!(
            "{}listener/{}/{}",
            super::arn_prefix(ctx),
            lb_path(&lb.arn),
            new_hex(16)
        );
        let doc = Listener {
            default_actions: Some(actions.clone()),
            listener_arn: Some(arn.clone()),
            load_balancer_arn: Some(lb.arn.clone()),
            port: Some(port),
            protocol: Some(protocol),
            ..Default::default()
        };
        tx.prepare_cached(
            "INSERT INTO elb_listeners (arn, load_balancer_arn, port, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![arn, lb.arn, port, ctx.now_millis(), serde_json::to_string(&doc)?])?;
        let default_rule = RuleRow {
            arn: rule_arn(&arn),
            listener_arn: arn.clone(),
            is_default: true,
            priority: 0,
            doc: Rule {
                actions: Some(actions),
                conditions: Some(vec![]),
                is_default: Some(true),
                priority: Some("default".into()),
                rule_arn: None,
                transforms: None,
            },
        };
        let mut default_rule = default_rule;
        default_rule.doc.rule_arn = Some(default_rule.arn.clone());
        insert_rule(tx, &default_rule, &groups)?;
        tags::set(tx, &arn, &tags)?;
        Ok(CreateListenerOutput {
            listeners: Some(vec![doc]),
        })
    })
}

pub fn describe(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeListenersInput,
) -> ApiResult<DescribeListenersOutput> {
    let arns = req.listener_arns.clone().unwrap_or_default();
    e.store.read(|conn| {
        let chosen: Vec<ListenerRow> =
            match (&req.load_balancer_arn, arns.is_empty()) {
                (Some(_), false) => return Err(validation(
                    "Listener ARNs and a load balancer ARN cannot be specified at the same time",
                )),
                (Some(lb), true) => {
                    load_balancers::require(conn, ctx, lb)?;
                    of_load_balancer(conn, lb)?
                }
                (None, false) => arns
                    .iter()
                    .map(|a| require(conn, ctx, a).map(|(l, _)| l))
                    .collect::<ApiResult<_>>()?,
                (None, true) => {
                    return Err(validation(
                        "You must specify either listener ARNs or a load balancer ARN",
                    ))
                }
            };
        let (items, next) = page(chosen, req.marker.as_deref(), req.page_size)?;
        Ok(DescribeListenersOutput {
            listeners: Some(items.into_iter().map(|l| l.doc).collect()),
            next_marker: next,
        })
    })
}

pub fn modify(e: &Elb, ctx: &Ctx, req: ModifyListenerInput) -> ApiResult<ModifyListenerOutput> {
    if let Some(p) = req.protocol {
        check_protocol(p)?;
    }
    if let Some(p) = req.port {
        check_port(p)?;
    }
    e.store.write(|tx| {
        let (mut l, lb) = require(tx, ctx, &req.listener_arn)?;
        if let Some(port) = req.port {
            if port != l.doc.port.unwrap_or(0)
                && of_load_balancer(tx, &lb.arn)?
                    .iter()
                    .any(|o| o.doc.port == Some(port))
            {
                return Err(error(
                    "DuplicateListener",
                    "A listener already exists on this port for this load balancer",
                ));
            }
            l.doc.port = Some(port);
        }
        if let Some(p) = req.protocol {
            l.doc.protocol = Some(p);
        }
        if let Some(mut actions) = req.default_actions.clone() {
            let groups = actions_for(tx, ctx, &lb.arn, &mut actions)?;
            let mut rule = rules_of(tx, &l.arn)?
                .into_iter()
                .find(|r| r.is_default)
                .ok_or_else(|| ApiError::internal("listener without its default rule"))?;
            rule.doc.actions = Some(actions.clone());
            save_rule(tx, &rule, &groups)?;
            l.doc.default_actions = Some(actions);
        }
        tx.prepare_cached("UPDATE elb_listeners SET port = ?2, doc = ?3 WHERE arn = ?1")?
            .execute(params![l.arn, l.doc.port, serde_json::to_string(&l.doc)?])?;
        Ok(ModifyListenerOutput {
            listeners: Some(vec![l.doc]),
        })
    })
}

pub fn delete(e: &Elb, ctx: &Ctx, req: DeleteListenerInput) -> ApiResult<DeleteListenerOutput> {
    e.store.write(|tx| {
        let (l, _) = require(tx, ctx, &req.listener_arn)?;
        delete_listener_rows(tx, &l.arn)?;
        Ok(DeleteListenerOutput {})
    })
}

fn check_priority(p: i64) -> ApiResult<()> {
    if (1..=50_000).contains(&p) {
        Ok(())
    } else {
        Err(validation(format!(
            "Priority '{p}' must be between 1 and 50000"
        )))
    }
}

fn priority_in_use(p: i64) -> ApiError {
    error(
        "PriorityInUse",
        format!("Priority '{p}' is currently in use"),
    )
}

pub fn create_rule(e: &Elb, ctx: &Ctx, req: CreateRuleInput) -> ApiResult<CreateRuleOutput> {
    check_priority(req.priority)?;
    let mut conditions = req.conditions.clone();
    normalise_conditions(&mut conditions)?;
    let tags = req.tags.clone().unwrap_or_default();
    tags::check(&tags)?;
    if req.transforms.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(validation("Rule transforms are not supported by Berth yet"));
    }
    e.store.write(|tx| {
        let (l, lb) = require(tx, ctx, &req.listener_arn)?;
        let mut actions = req.actions.clone();
        let groups = actions_for(tx, ctx, &lb.arn, &mut actions)?;
        let rules = rules_of(tx, &l.arn)?;
        if rules.iter().any(|r| !r.is_default && r.priority == req.priority) {
            return Err(priority_in_use(req.priority));
        }
        let count: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM elb_rules r JOIN elb_listeners l ON l.arn = r.listener_arn
                 WHERE l.load_balancer_arn = ?1 AND r.is_default = 0",
            )?
            .query_row([&lb.arn], |r| r.get(0))?;
        if count as usize >= MAX_RULES {
            return Err(error(
                "TooManyRules",
                format!("You've reached the limit on the number of rules per load balancer ({MAX_RULES})"),
            ));
        }
        let arn = rule_arn(&l.arn);
        let rule = RuleRow {
            arn: arn.clone(),
            listener_arn: l.arn.clone(),
            is_default: false,
            priority: req.priority,
            doc: Rule {
                actions: Some(actions),
                conditions: Some(conditions.clone()),
                is_default: Some(false),
                priority: Some(req.priority.to_string()),
                rule_arn: Some(arn.clone()),
                transforms: None,
            },
        };
        insert_rule(tx, &rule, &groups)?;
        tags::set(tx, &arn, &tags)?;
        Ok(CreateRuleOutput {
            rules: Some(vec![rule.doc]),
        })
    })
}

pub fn describe_rules(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeRulesInput,
) -> ApiResult<DescribeRulesOutput> {
    let arns = req.rule_arns.clone().unwrap_or_default();
    e.store.read(|conn| {
        let chosen: Vec<RuleRow> = match (&req.listener_arn, arns.is_empty()) {
            (Some(_), false) => {
                return Err(validation(
                    "Rule ARNs and a listener ARN cannot be specified at the same time",
                ))
            }
            (Some(l), true) => {
                require(conn, ctx, l)?;
                rules_of(conn, l)?
            }
            (None, false) => arns
                .iter()
                .map(|a| require_rule(conn, ctx, a).map(|(r, _, _)| r))
                .collect::<ApiResult<_>>()?,
            (None, true) => {
                return Err(validation(
                    "You must specify either listener ARN or rule ARNs",
                ))
            }
        };
        let (items, next) = page(chosen, req.marker.as_deref(), req.page_size)?;
        Ok(DescribeRulesOutput {
            rules: Some(items.into_iter().map(|r| r.doc).collect()),
            next_marker: next,
        })
    })
}

pub fn modify_rule(e: &Elb, ctx: &Ctx, req: ModifyRuleInput) -> ApiResult<ModifyRuleOutput> {
    let mut conditions = req.conditions.clone();
    if let Some(c) = conditions.as_mut() {
        normalise_conditions(c)?;
    }
    if req.transforms.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(validation("Rule transforms are not supported by Berth yet"));
    }
    e.store.write(|tx| {
        let (mut r, _, lb) = require_rule(tx, ctx, &req.rule_arn)?;
        if r.is_default && conditions.is_some() {
            return Err(error(
                "OperationNotPermitted",
                "The conditions of a default rule cannot be modified",
            ));
        }
        let mut groups = rule_groups(tx, &r.arn)?;
        if let Some(actions) = req.actions.clone() {
            groups = replace_actions(tx, ctx, &mut r, &lb.arn, actions)?;
        }
        if let Some(c) = conditions.clone() {
            r.doc.conditions = Some(c);
        }
        save_rule(tx, &r, &groups)?;
        Ok(ModifyRuleOutput {
            rules: Some(vec![r.doc]),
        })
    })
}

/// Give rule `r` new actions (checked), its listener's default actions too
/// when it is the default rule; the target groups it then forwards to.
fn replace_actions(
    tx: &Connection,
    ctx: &Ctx,
    r: &mut RuleRow,
    lb_arn: &str,
    mut actions: Vec<Action>,
) -> ApiResult<String> {
    let groups = actions_for(tx, ctx, lb_arn, &mut actions)?;
    r.doc.actions = Some(actions.clone());
    if r.is_default {
        let (mut l, _) = require(tx, ctx, &r.listener_arn)?;
        l.doc.default_actions = Some(actions);
        tx.prepare_cached("UPDATE elb_listeners SET doc = ?2 WHERE arn = ?1")?
            .execute(params![l.arn, serde_json::to_string(&l.doc)?])?;
    }
    Ok(groups)
}

/// The target groups and weights of rule `arn`'s forward action (`None`
/// when the rule does not forward), for ECS's traffic shifts.
pub fn forward_weights(conn: &Connection, arn: &str) -> ApiResult<Option<Vec<(String, i64)>>> {
    let Some(r) = load_rule(conn, arn)? else {
        return Ok(None);
    };
    Ok(r.doc
        .actions
        .iter()
        .flatten()
        .find(|a| a.r#type == ActionTypeEnum::Forward)
        .map(|a| {
            a.forward_config
                .iter()
                .flat_map(|f| f.target_groups.iter().flatten())
                .map(|t| {
                    (
                        t.target_group_arn.clone().unwrap_or_default(),
                        t.weight.unwrap_or(1),
                    )
                })
                .collect()
        }))
}

/// Rewrite rule `arn`'s forward action to `weights` (target group, weight),
/// keeping its group stickiness, as ECS does to shift traffic between a
/// service's blue and green target groups.
pub fn set_forward_weights(
    conn: &Connection,
    ctx: &Ctx,
    arn: &str,
    weights: &[(String, i64)],
) -> ApiResult<()> {
    let (mut r, _, lb) = require_rule(conn, ctx, arn)?;
    let mut actions = r.doc.actions.clone().unwrap_or_default();
    let Some(forward) = actions
        .iter_mut()
        .find(|a| a.r#type == ActionTypeEnum::Forward)
    else {
        return Err(error(
            "OperationNotPermitted",
            format!("Rule '{arn}' does not forward to target groups"),
        ));
    };
    forward.target_group_arn = None;
    let config = forward.forward_config.get_or_insert_with(Default::default);
    config.target_groups = Some(
        weights
            .iter()
            .map(|(tg, w)| TargetGroupTuple {
                target_group_arn: Some(tg.clone()),
                weight: Some(*w),
            })
            .collect(),
    );
    let groups = replace_actions(conn, ctx, &mut r, &lb.arn, actions)?;
    save_rule(conn, &r, &groups)
}

fn rule_groups(conn: &Connection, arn: &str) -> ApiResult<String> {
    Ok(conn
        .prepare_cached("SELECT target_groups FROM elb_rules WHERE arn = ?1")?
        .query_row([arn], |r| r.get(0))?)
}

pub fn delete_rule(e: &Elb, ctx: &Ctx, req: DeleteRuleInput) -> ApiResult<DeleteRuleOutput> {
    e.store.write(|tx| {
        let (r, _, _) = require_rule(tx, ctx, &req.rule_arn)?;
        if r.is_default {
            return Err(error(
                "OperationNotPermitted",
                "A listener's default rule cannot be deleted",
            ));
        }
        tx.prepare_cached("DELETE FROM elb_rules WHERE arn = ?1")?
            .execute([&r.arn])?;
        tags::set(tx, &r.arn, &[])?;
        Ok(DeleteRuleOutput {})
    })
}

pub fn set_rule_priorities(
    e: &Elb,
    ctx: &Ctx,
    req: SetRulePrioritiesInput,
) -> ApiResult<SetRulePrioritiesOutput> {
    e.store.write(|tx| {
        let mut changed: Vec<(RuleRow, String)> = Vec::new();
        let mut wanted = BTreeSet::new();
        for pair in &req.rule_priorities {
            let arn = pair
                .rule_arn
                .clone()
                .ok_or_else(|| validation("Each rule priority pair must name a rule"))?;
            let p = pair
                .priority
                .ok_or_else(|| validation("Each rule priority pair must give a priority"))?;
            check_priority(p)?;
            let (r, _, _) = require_rule(tx, ctx, &arn)?;
            if r.is_default {
                return Err(error(
                    "OperationNotPermitted",
                    "The priority of a default rule cannot be changed",
                ));
            }
            if !wanted.insert((r.listener_arn.clone(), p)) {
                return Err(priority_in_use(p));
            }
            let groups = rule_groups(tx, &r.arn)?;
            changed.push((RuleRow { priority: p, ..r }, groups));
        }
        // Another rule of the listener keeping a wanted priority clashes.
        for (r, _) in &changed {
            let clash = rules_of(tx, &r.listener_arn)?.into_iter().any(|o| {
                !o.is_default
                    && o.priority == r.priority
                    && !changed.iter().any(|(c, _)| c.arn == o.arn)
            });
            if clash {
                return Err(priority_in_use(r.priority));
            }
        }
        // Move them out of the way first, so swapped priorities never
        // meet in the unique index.
        for (i, (r, _)) in changed.iter().enumerate() {
            tx.prepare_cached("UPDATE elb_rules SET priority = ?2 WHERE arn = ?1")?
                .execute(params![r.arn, -(i as i64) - 1])?;
        }
        let mut out = Vec::new();
        for (mut r, groups) in changed {
            r.doc.priority = Some(r.priority.to_string());
            save_rule(tx, &r, &groups)?;
            out.push(r.doc);
        }
        Ok(SetRulePrioritiesOutput { rules: Some(out) })
    })
}
