//! Capacity providers: `CreateCapacityProvider`, `DescribeCapacityProviders`,
//! `UpdateCapacityProvider`, `DeleteCapacityProvider`,
//! `PutClusterCapacityProviders`; how a capacity provider strategy splits a
//! RunTask's tasks (`split`, pure); and the `CapacityProviderReservation`
//! metric (`reservation`, pure). Managed scaling itself (tasks waiting in
//! PROVISIONING placed as capacity arrives, the group's desired capacity set
//! from the metric, scale-in protection) runs in `autoscaling::managed`,
//! reading providers through the functions here.
//!
//! `FARGATE` and `FARGATE_SPOT` are built in: they exist in every account
//! and are never stored.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::shapes::{
    AutoScalingGroupProvider, CapacityProvider, CapacityProviderField, CapacityProviderStatus,
    CapacityProviderStrategyItem, CapacityProviderType, CapacityProviderUpdateStatus,
    CreateCapacityProviderRequest, CreateCapacityProviderResponse, DeleteCapacityProviderRequest,
    DeleteCapacityProviderResponse, DescribeCapacityProvidersRequest,
    DescribeCapacityProvidersResponse, ManagedDraining, ManagedScaling, ManagedScalingStatus,
    ManagedTerminationProtection, PutClusterCapacityProvidersRequest,
    PutClusterCapacityProvidersResponse, UpdateCapacityProviderRequest,
    UpdateCapacityProviderResponse,
};
use super::{arn, clusters, describe_each, tags, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::paging;

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

pub fn is_fargate(name: &str) -> bool {
    name == FARGATE || name == FARGATE_SPOT
}

/// What a provider's row keeps: the `CapacityProvider` shape as last
/// rendered (without status and tags, which have their own places), and
/// managed scaling's own state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderDoc {
    /// Since when (epoch ms) managed scaling has seen the metric below its
    /// target.
    #[serde(
        rename = "berthBelowSince",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub below_since: Option<i64>,
    #[serde(flatten)]
    pub shape: CapacityProvider,
}

/// A stored capacity provider.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub group_arn: String,
    pub status: CapacityProviderStatus,
    pub doc: ProviderDoc,
}

/// Managed scaling's settings, ECS's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingSettings {
    pub target_capacity: i64,
    pub minimum_step: i64,
    pub maximum_step: i64,
}

impl ProviderRow {
    fn asg(&self) -> Option<&AutoScalingGroupProvider> {
        self.doc.shape.auto_scaling_group_provider.as_ref()
    }

    fn managed(&self) -> Option<&ManagedScaling> {
        self.asg()
            .and_then(|a| a.managed_scaling.as_ref())
            .filter(|m| m.status == Some(ManagedScalingStatus::Enabled))
    }

    pub fn managed_scaling(&self) -> bool {
        self.managed().is_some()
    }

    pub fn managed_termination_protection(&self) -> bool {
        self.asg().and_then(|a| a.managed_termination_protection)
            == Some(ManagedTerminationProtection::Enabled)
    }

    pub fn scaling(&self) -> ScalingSettings {
        let m = self.managed();
        ScalingSettings {
            target_capacity: m.and_then(|m| m.target_capacity).unwrap_or(100),
            minimum_step: m.and_then(|m| m.minimum_scaling_step_size).unwrap_or(1),
            maximum_step: m.and_then(|m| m.maximum_scaling_step_size).unwrap_or(10000),
        }
    }

    fn is_active(&self) -> bool {
        self.status == CapacityProviderStatus::Active
    }
}

const SELECT: &str =
    "SELECT arn, account, region, name, group_arn, status, doc FROM capacity_providers";

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProviderRow> {
    let doc: String = r.get(6)?;
    let status: String = r.get(5)?;
    Ok(ProviderRow {
        arn: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        name: r.get(3)?,
        group_arn: r.get(4)?,
        status: serde_json::from_value(status.into()).unwrap_or(CapacityProviderStatus::Inactive),
        doc: serde_json::from_str(&doc).unwrap_or_default(),
    })
}

/// A provider by name or ARN, ACTIVE or not.
pub fn find(conn: &Connection, ctx: &Ctx, ident: &str) -> ApiResult<Option<ProviderRow>> {
    let name = ident
        .rsplit_once(":capacity-provider/")
        .map_or(ident, |(_, n)| n);
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2 AND name = ?3"
        ))?
        .query_row(params![ctx.account, ctx.region, name], from_sql)
        .optional()?)
}

fn active(conn: &Connection, ctx: &Ctx, ident: &str) -> ApiResult<Option<ProviderRow>> {
    Ok(find(conn, ctx, ident)?.filter(ProviderRow::is_active))
}

fn save(tx: &Connection, p: &ProviderRow) -> ApiResult<()> {
    tx.prepare_cached("UPDATE capacity_providers SET status = ?2, doc = ?3 WHERE arn = ?1")?
        .execute(params![
            p.arn,
            p.status.as_str(),
            serde_json::to_string(&p.doc)?
        ])?;
    Ok(())
}

fn not_active(name: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "The specified capacity provider '{name}' is not in an ACTIVE state. Specify a valid capacity provider and try again."
    ))
}

/// The `CapacityProvider` shape.
fn render(conn: &Connection, p: &ProviderRow, with_tags: bool) -> ApiResult<CapacityProvider> {
    Ok(CapacityProvider {
        status: Some(p.status),
        tags: if with_tags {
            Some(tags::load(conn, &p.arn)?)
        } else {
            None
        },
        ..p.doc.shape.clone()
    })
}

fn builtin(ctx: &Ctx, name: &str) -> CapacityProvider {
    CapacityProvider {
        capacity_provider_arn: Some(arn::capacity_provider(ctx, name)),
        name: Some(name.into()),
        status: Some(CapacityProviderStatus::Active),
        tags: Some(Vec::new()),
        ..CapacityProvider::default()
    }
}

/// `managedScaling` with ECS's defaults filled in.
fn managed_scaling(given: Option<&ManagedScaling>) -> ApiResult<ManagedScaling> {
    let status = match given {
        None => ManagedScalingStatus::Disabled,
        Some(g) => g.status.unwrap_or(ManagedScalingStatus::Enabled),
    };
    let g = given.cloned().unwrap_or_default();
    let out = ManagedScaling {
        status: Some(status),
        target_capacity: Some(g.target_capacity.unwrap_or(100)),
        minimum_scaling_step_size: Some(g.minimum_scaling_step_size.unwrap_or(1)),
        maximum_scaling_step_size: Some(g.maximum_scaling_step_size.unwrap_or(10000)),
        instance_warmup_period: Some(g.instance_warmup_period.unwrap_or(300)),
    };
    if out.minimum_scaling_step_size > out.maximum_scaling_step_size {
        return Err(ApiError::invalid_parameter(
            "The minimum scaling step size must be less than or equal to the maximum scaling step size.",
        ));
    }
    Ok(out)
}

fn check_termination_protection(
    asgp: &AutoScalingGroupProvider,
    group: &GroupFacts,
) -> ApiResult<()> {
    if asgp.managed_termination_protection != Some(ManagedTerminationProtection::Enabled) {
        return Ok(());
    }
    let scaling = asgp.managed_scaling.as_ref().and_then(|m| m.status);
    if scaling != Some(ManagedScalingStatus::Enabled) {
        return Err(ApiError::invalid_parameter(
            "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must also be enabled.",
        ));
    }
    if !group.protects_new_instances {
        return Err(ApiError::invalid_parameter(
            "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled.",
        ));
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The clusters a provider is associated with.
fn clusters_using(conn: &Connection, ctx: &Ctx, name: &str) -> ApiResult<Vec<String>> {
    Ok(clusters::active_docs(conn, ctx)?
        .into_iter()
        .filter(|(_, doc)| doc.capacity_providers.iter().any(|p| p == name))
        .map(|(n, _)| n)
        .collect())
}

/// Live tasks that a provider launched in a cluster.
fn live_tasks_of(conn: &Connection, cluster_arn: &str, name: &str) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM tasks WHERE cluster_arn = ?1 AND last_status != 'STOPPED'
               AND json_extract(doc, '$.capacityProviderName') = ?2",
        )?
        .query_row(params![cluster_arn, name], |r| r.get(0))?)
}

/// A strategy's items, checked as ECS checks them against the providers
/// associated with the cluster.
pub fn check_strategy(
    conn: &Connection,
    ctx: &Ctx,
    associated: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> ApiResult<Vec<Item>> {
    if strategy.is_empty() {
        return Err(ApiError::invalid_parameter(
            "The capacity provider strategy cannot be empty.",
        ));
    }
    let items: Vec<Item> = strategy
        .iter()
        .map(|s| Item {
            provider: s.capacity_provider.clone(),
            base: s.base.unwrap_or(0),
            weight: s.weight.unwrap_or(0),
        })
        .collect();
    let mut seen = HashSet::new();
    for i in &items {
        if !seen.insert(i.provider.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "The capacity provider strategy contains a duplicate capacity provider '{}'.",
                i.provider
            )));
        }
        if !is_fargate(&i.provider) && active(conn, ctx, &i.provider)?.is_none() {
            return Err(not_active(&i.provider));
        }
        if !associated.iter().any(|a| a == &i.provider) {
            return Err(ApiError::invalid_parameter(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
            ));
        }
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(ApiError::invalid_parameter(
            "The capacity provider strategy can have a base value for only one capacity provider.",
        ));
    }
    if items.iter().all(|i| i.weight == 0) {
        return Err(ApiError::invalid_parameter(
            "The capacity provider strategy must have at least one capacity provider with a weight greater than zero.",
        ));
    }
    let fargate = items.iter().filter(|i| is_fargate(&i.provider)).count();
    if fargate > 0 && fargate < items.len() {
        return Err(ApiError::invalid_parameter(
            "The capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.",
        ));
    }
    Ok(items)
}

/// One item of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub provider: String,
    pub base: i64,
    pub weight: i64,
}

/// How many of `n` tasks each item of a strategy takes: the base first,
/// then the rest in proportion to the weights (each next task to the item
/// furthest below its share, earlier items first on ties).
pub fn split(items: &[Item], n: i64) -> Vec<i64> {
    let mut counts = vec![0i64; items.len()];
    let mut left = n;
    for (i, it) in items.iter().enumerate() {
        let b = it.base.min(left).max(0);
        counts[i] += b;
        left -= b;
    }
    let mut above = vec![0i64; items.len()];
    for _ in 0..left {
        let pick = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.weight > 0)
            .min_by(|(a, x), (b, y)| {
                // (above+1)/weight, compared without division.
                ((above[*a] + 1) * y.weight).cmp(&((above[*b] + 1) * x.weight))
            })
            .map(|(i, _)| i);
        match pick {
            Some(i) => {
                above[i] += 1;
                counts[i] += 1;
            }
            None => break,
        }
    }
    counts
}

/// What ECS knows of an Auto Scaling group behind a capacity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts {
    pub arn: String,
    /// `NewInstancesProtectedFromScaleIn`: needed for managed termination
    /// protection.
    pub protects_new_instances: bool,
}

/// What ECS needs of the Auto Scaling groups its capacity providers use.
/// Auto Scaling implements it (ECS does not reach into its tables).
pub trait ScalingGroups: Send + Sync {
    /// The group with this ARN in the caller's account and region.
    fn group(&self, conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<Option<GroupFacts>>;
    /// The container instances the group's instances registered.
    fn container_instances(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        group_arn: &str,
    ) -> ApiResult<HashSet<String>>;
}

/// The container instances of a provider's Auto Scaling group.
pub fn group_instances(
    conn: &Connection,
    groups: &dyn ScalingGroups,
    p: &ProviderRow,
) -> ApiResult<HashSet<String>> {
    groups.container_instances(conn, &p.account, &p.region, &p.group_arn)
}

/// The name of the provider (not deleted) that uses a group.
pub fn provider_of_group(conn: &Connection, group_arn: &str) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT name FROM capacity_providers WHERE group_arn = ?1 AND status = 'ACTIVE'",
        )?
        .query_row([group_arn], |r| r.get(0))
        .optional()?)
}

/// The providers not deleted, oldest first (for managed scaling).
pub fn all_active(conn: &Connection) -> ApiResult<Vec<ProviderRow>> {
    let rows = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE status = 'ACTIVE' ORDER BY created_at"
        ))?
        .query_map([], from_sql)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Since when (epoch ms) managed scaling has seen the provider's metric
/// below its target (`None`: it is not), kept across passes.
pub fn below_target_since(p: &ProviderRow) -> Option<i64> {
    p.doc.below_since
}

/// Record since when the metric has been below target (`None`: it is not).
pub fn set_below_target_since(
    tx: &Connection,
    p: &mut ProviderRow,
    since: Option<i64>,
) -> ApiResult<()> {
    if p.doc.below_since == since {
        return Ok(());
    }
    p.doc.below_since = since;
    save(tx, p)
}

/// Check the providers and default strategy a cluster is given (by
/// CreateCluster or PutClusterCapacityProviders).
pub fn check_cluster_providers(
    conn: &Connection,
    ctx: &Ctx,
    cluster_name: &str,
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> ApiResult<()> {
    for name in providers {
        if is_fargate(name) {
            continue;
        }
        if active(conn, ctx, name)?.is_none() {
            return Err(not_active(name));
        }
        if let Some(other) = clusters_using(conn, ctx, name)?
            .into_iter()
            .find(|c| c != cluster_name)
        {
            return Err(ApiError::new(
                "ResourceInUseException",
                format!("The specified capacity provider '{name}' is already associated with cluster '{other}'. A capacity provider using an Auto Scaling group can be associated with only one cluster."),
            ));
        }
    }
    if !strategy.is_empty() {
        check_strategy(conn, ctx, providers, strategy)?;
    }
    Ok(())
}

impl Ecs {
    pub(super) fn create_capacity_provider(
        &self,
        ctx: &Ctx,
        req: CreateCapacityProviderRequest,
    ) -> ApiResult<CreateCapacityProviderResponse> {
        let user_tags = tags::from_shapes(req.tags.as_deref().unwrap_or_default());
        tags::check_user_tags(&user_tags)?;
        let lower = req.name.to_ascii_lowercase();
        if ["aws", "ecs", "fargate"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Err(ApiError::invalid_parameter(
                "The specified capacity provider name is invalid. Capacity provider names cannot start with 'aws', 'ecs', or 'fargate'.",
            ));
        }
        if !valid_name(&req.name) {
            return Err(ApiError::invalid_parameter(
                "The specified capacity provider name is invalid. Up to 255 characters are allowed, including letters (upper and lowercase), numbers, underscores, and hyphens.",
            ));
        }
        let Some(given) = req.auto_scaling_group_provider else {
            return Err(ApiError::invalid_parameter(
                "Berth supports capacity providers with an autoScalingGroupProvider.",
            ));
        };
        let asgp = AutoScalingGroupProvider {
            managed_scaling: Some(managed_scaling(given.managed_scaling.as_ref())?),
            managed_termination_protection: Some(
                given
                    .managed_termination_protection
                    .unwrap_or(ManagedTerminationProtection::Disabled),
            ),
            managed_draining: Some(given.managed_draining.unwrap_or(ManagedDraining::Enabled)),
            auto_scaling_group_arn: given.auto_scaling_group_arn,
        };
        let group_arn = asgp.auto_scaling_group_arn.clone();
        self.store.write(|tx| {
            if find(tx, ctx, &req.name)?.is_some_and(|p| p.is_active()) {
                return Err(ApiError::client(format!(
                    "The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider. ({})",
                    req.name
                )));
            }
            let group = self.groups.group(tx, ctx, &group_arn)?
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "The specified Auto Scaling group ARN is invalid: no Auto Scaling group has the ARN {group_arn}."
                    ))
                })?;
            if provider_of_group(tx, &group_arn)?.is_some() {
                return Err(ApiError::client(
                    "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.",
                ));
            }
            check_termination_protection(&asgp, &group)?;
            let arn = arn::capacity_provider(ctx, &req.name);
            let doc = ProviderDoc {
                below_since: None,
                shape: CapacityProvider {
                    capacity_provider_arn: Some(arn.clone()),
                    name: Some(req.name.clone()),
                    r#type: Some(CapacityProviderType::Ec2Autoscaling),
                    auto_scaling_group_provider: Some(asgp.clone()),
                    update_status: Some(CapacityProviderUpdateStatus::CreateComplete),
                    ..CapacityProvider::default()
                },
            };
            tx.prepare_cached("DELETE FROM capacity_providers WHERE arn = ?1")?
                .execute([&arn])?;
            tx.prepare_cached(
                "INSERT INTO capacity_providers (arn, account, region, name, group_arn, status, created_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'ACTIVE', ?6, ?7)",
            )?
            .execute(params![
                arn,
                ctx.account,
                ctx.region,
                req.name,
                group_arn,
                ctx.now_millis(),
                serde_json::to_string(&doc)?
            ])?;
            tags::put(tx, &arn, &user_tags)?;
            let p = find(tx, ctx, &req.name)?.expect("just inserted");
            Ok(CreateCapacityProviderResponse {
                capacity_provider: Some(render(tx, &p, true)?),
            })
        })
    }

    pub(super) fn update_capacity_provider(
        &self,
        ctx: &Ctx,
        req: UpdateCapacityProviderRequest,
    ) -> ApiResult<UpdateCapacityProviderResponse> {
        let update = req.auto_scaling_group_provider.unwrap_or_default();
        self.store.write(|tx| {
            let mut p = active(tx, ctx, &req.name)?.ok_or_else(|| not_active(&req.name))?;
            let mut asgp = p.asg().cloned().unwrap_or_default();
            if let Some(ms) = &update.managed_scaling {
                asgp.managed_scaling = Some(managed_scaling(Some(ms))?);
            }
            if let Some(v) = update.managed_termination_protection {
                asgp.managed_termination_protection = Some(v);
            }
            if let Some(v) = update.managed_draining {
                asgp.managed_draining = Some(v);
            }
            if let Some(g) = self.groups.group(tx, ctx, &p.group_arn)? {
                check_termination_protection(&asgp, &g)?;
            }
            p.doc.shape.auto_scaling_group_provider = Some(asgp);
            p.doc.shape.update_status = Some(CapacityProviderUpdateStatus::UpdateComplete);
            save(tx, &p)?;
            Ok(UpdateCapacityProviderResponse {
                capacity_provider: Some(render(tx, &p, false)?),
            })
        })
    }

    pub(super) fn delete_capacity_provider(
        &self,
        ctx: &Ctx,
        req: DeleteCapacityProviderRequest,
    ) -> ApiResult<DeleteCapacityProviderResponse> {
        if is_fargate(&req.capacity_provider) {
            return Err(ApiError::invalid_parameter(
                "The FARGATE and FARGATE_SPOT capacity providers are reserved and cannot be deleted.",
            ));
        }
        self.store.write(|tx| {
            let mut p = active(tx, ctx, &req.capacity_provider)?
                .ok_or_else(|| not_active(&req.capacity_provider))?;
            if let Some(c) = clusters_using(tx, ctx, &p.name)?.first() {
                return Err(ApiError::client(format!(
                    "The capacity provider cannot be deleted because it is associated with cluster: {c}. Remove the capacity provider from the cluster and try again."
                )));
            }
            p.status = CapacityProviderStatus::Inactive;
            p.doc.shape.update_status = Some(CapacityProviderUpdateStatus::DeleteComplete);
            save(tx, &p)?;
            Ok(DeleteCapacityProviderResponse {
                capacity_provider: Some(render(tx, &p, false)?),
            })
        })
    }

    pub(super) fn describe_capacity_providers(
        &self,
        ctx: &Ctx,
        req: DescribeCapacityProvidersRequest,
    ) -> ApiResult<DescribeCapacityProvidersResponse> {
        let with_tags = req
            .include
            .iter()
            .flatten()
            .any(|i| *i == CapacityProviderField::Tags);
        let size = paging::page_size(req.max_results, 10)?;
        let start = match &req.next_token {
            Some(t) => paging::decode_as::<usize>(t)?,
            None => 0,
        };
        self.store.read(|conn| {
            let (found, failures) = match &req.capacity_providers {
                Some(names) if !names.is_empty() => describe_each(names, |n| {
                    Ok(if is_fargate(n) {
                        Ok(builtin(ctx, n))
                    } else if let Some(p) = find(conn, ctx, n)? {
                        Ok(render(conn, &p, with_tags)?)
                    } else if n.starts_with("arn:") {
                        Err(n.clone())
                    } else {
                        Err(arn::capacity_provider(ctx, n))
                    })
                })?,
                _ => {
                    let mut found = vec![builtin(ctx, FARGATE), builtin(ctx, FARGATE_SPOT)];
                    let rows: Vec<ProviderRow> = conn
                        .prepare_cached(&format!(
                            "{SELECT} WHERE account = ?1 AND region = ?2 AND status = 'ACTIVE' ORDER BY name"
                        ))?
                        .query_map(params![ctx.account, ctx.region], from_sql)?
                        .collect::<Result<_, _>>()?;
                    for p in rows {
                        found.push(render(conn, &p, with_tags)?);
                    }
                    (found, Vec::new())
                }
            };
            let total = found.len();
            Ok(DescribeCapacityProvidersResponse {
                capacity_providers: Some(found.into_iter().skip(start).take(size).collect()),
                failures: Some(failures),
                next_token: (start + size < total)
                    .then(|| paging::encode(&(start + size).into())),
            })
        })
    }

    pub(super) fn put_cluster_capacity_providers(
        &self,
        ctx: &Ctx,
        req: PutClusterCapacityProvidersRequest,
    ) -> ApiResult<PutClusterCapacityProvidersResponse> {
        self.store.write(|tx| {
            let mut row = clusters::resolve_active(tx, ctx, Some(&req.cluster))?;
            check_cluster_providers(
                tx,
                ctx,
                &row.name,
                &req.capacity_providers,
                &req.default_capacity_provider_strategy,
            )?;
            for removed in row
                .doc
                .capacity_providers
                .iter()
                .filter(|c| !req.capacity_providers.contains(c))
            {
                if live_tasks_of(tx, &row.arn, removed)? > 0 {
                    return Err(ApiError::new(
                        "ResourceInUseException",
                        format!("The specified capacity provider '{removed}' is in use and cannot be removed."),
                    ));
                }
            }
            row.doc.capacity_providers = req.capacity_providers.clone();
            row.doc.default_capacity_provider_strategy =
                req.default_capacity_provider_strategy.clone();
            clusters::save_doc(tx, &row)?;
            Ok(PutClusterCapacityProvidersResponse {
                cluster: Some(clusters::render(tx, &row, clusters::ALL_PARTS)?),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: &str, base: i64, weight: i64) -> Item {
        Item {
            provider: p.into(),
            base,
            weight,
        }
    }

    #[test]
    fn split_base_then_weights() {
        let s = [item("a", 2, 1), item("b", 0, 3)];
        assert_eq!(split(&s, 1), [1, 0]);
        assert_eq!(split(&s, 2), [2, 0]);
        assert_eq!(split(&s, 6), [3, 3]);
        assert_eq!(split(&s, 10), [4, 6]);
        assert_eq!(split(&[item("a", 0, 1), item("b", 0, 1)], 3), [2, 1]);
        assert_eq!(split(&[item("a", 0, 0), item("b", 0, 1)], 3), [0, 3]);
        assert_eq!(split(&[item("a", 5, 0), item("b", 0, 1)], 3), [3, 0]);
    }
}
