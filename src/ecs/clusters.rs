//! Clusters: `CreateCluster`, `DescribeClusters`, `ListClusters`,
//! `DeleteCluster`, `UpdateCluster`, `UpdateClusterSettings`.
//!
//! A cluster row keeps its name, status and creation time in columns and the
//! rest (settings, configuration, capacity providers…) as a JSON document.
//! A deleted cluster stays as INACTIVE, still describable, as in ECS;
//! creating it again makes it ACTIVE with the new parameters.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{arn, tags, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::paging;

pub const DEFAULT_CLUSTER: &str = "default";

#[derive(Debug, Clone)]
pub struct ClusterRow {
    pub arn: String,
    pub name: String,
    pub status: String,
    pub doc: Map<String, Value>,
}

/// The live counters of a cluster, computed from state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub running_tasks: i64,
    pub pending_tasks: i64,
    pub active_services: i64,
    pub registered_instances: i64,
    pub running_fargate_tasks: i64,
    pub pending_fargate_tasks: i64,
    /// Tasks not yet STOPPED, in any state.
    pub live_tasks: i64,
}

/// Counters for one cluster, from the tables of what it holds. Services and
/// container instances add theirs here when they arrive.
pub fn counts(conn: &Connection, cluster_arn: &str) -> ApiResult<Counts> {
    let t = super::tasks::cluster_task_counts(conn, cluster_arn)?;
    Ok(Counts {
        running_tasks: t.running,
        pending_tasks: t.pending,
        running_fargate_tasks: t.running_fargate,
        pending_fargate_tasks: t.pending_fargate,
        live_tasks: t.live,
        registered_instances: super::instances::registered_count(conn, cluster_arn)?,
        ..Counts::default()
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The ARN a cluster identifier (name or ARN) stands for.
pub fn identifier_arn(ctx: &Ctx, ident: &str) -> String {
    if ident.starts_with("arn:") {
        ident.to_string()
    } else {
        arn::cluster(ctx, ident)
    }
}

/// Find a cluster, in any status, by name or ARN.
pub fn find(conn: &Connection, ctx: &Ctx, ident: &str) -> ApiResult<Option<ClusterRow>> {
    let arn = identifier_arn(ctx, ident);
    let mut stmt =
        conn.prepare_cached("SELECT arn, name, status, doc FROM clusters WHERE arn = ?1")?;
    let row = stmt
        .query_row([&arn], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    row.map(|(arn, name, status, doc)| {
        Ok(ClusterRow {
            arn,
            name,
            status,
            doc: serde_json::from_str(&doc).map_err(|e| ApiError::internal(e.to_string()))?,
        })
    })
    .transpose()
}

/// The ACTIVE cluster a call names (or `default` when it names none), or
/// `ClusterNotFoundException`.
pub fn resolve_active(conn: &Connection, ctx: &Ctx, ident: Option<&str>) -> ApiResult<ClusterRow> {
    match find(conn, ctx, ident.unwrap_or(DEFAULT_CLUSTER))? {
        Some(c) if c.status == "ACTIVE" => Ok(c),
        _ => Err(ApiError::cluster_not_found()),
    }
}

/// The cluster a call names; when it names none, `default`, created on first
/// use as ECS does.
pub fn resolve_or_create_default(
    conn: &Connection,
    ctx: &Ctx,
    ident: Option<&str>,
) -> ApiResult<ClusterRow> {
    if ident.is_none() {
        if let Some(c) = find(conn, ctx, DEFAULT_CLUSTER)?.filter(|c| c.status == "ACTIVE") {
            return Ok(c);
        }
        return upsert(conn, ctx, DEFAULT_CLUSTER, Map::new());
    }
    resolve_active(conn, ctx, ident)
}

fn default_settings() -> Value {
    json!([{"name": "containerInsights", "value": "disabled"}])
}

fn check_settings(settings: &[Value]) -> ApiResult<()> {
    for s in settings {
        let name = s.get("name").and_then(Value::as_str);
        let value = s.get("value").and_then(Value::as_str);
        if name != Some("containerInsights") {
            return Err(ApiError::invalid_parameter(
                "Cluster setting name must be containerInsights.",
            ));
        }
        if !matches!(value, Some("enabled" | "disabled" | "enhanced")) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid value '{}' for the containerInsights setting: use enabled, disabled or enhanced.",
                value.unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// Merge settings by name into the existing ones.
fn merge_settings(doc: &mut Map<String, Value>, new: &[Value]) {
    let mut current = doc
        .get("settings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| default_settings().as_array().unwrap().clone());
    for s in new {
        let name = s.get("name");
        match current.iter_mut().find(|c| c.get("name") == name) {
            Some(c) => *c = s.clone(),
            None => current.push(s.clone()),
        }
    }
    doc.insert("settings".into(), Value::Array(current));
}

/// Create the cluster, or make an INACTIVE one ACTIVE again with `doc`.
fn upsert(
    conn: &Connection,
    ctx: &Ctx,
    name: &str,
    mut doc: Map<String, Value>,
) -> ApiResult<ClusterRow> {
    let arn = arn::cluster(ctx, name);
    let new_settings = doc
        .remove("settings")
        .and_then(|s| s.as_array().cloned())
        .unwrap_or_default();
    merge_settings(&mut doc, &new_settings);
    for list in ["capacityProviders", "defaultCapacityProviderStrategy"] {
        doc.entry(list).or_insert_with(|| json!([]));
    }
    conn.prepare_cached(
        "INSERT INTO clusters (arn, account, region, name, status, created_at, doc)
         VALUES (?1, ?2, ?3, ?4, 'ACTIVE', ?5, ?6)
         ON CONFLICT (arn) DO UPDATE SET status = 'ACTIVE', created_at = excluded.created_at, doc = excluded.doc",
    )?
    .execute(params![
        arn,
        ctx.account,
        ctx.region,
        name,
        ctx.now_millis(),
        Value::Object(doc.clone()).to_string()
    ])?;
    Ok(ClusterRow {
        arn,
        name: name.to_string(),
        status: "ACTIVE".into(),
        doc,
    })
}

pub(crate) fn save_doc(conn: &Connection, row: &ClusterRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE clusters SET doc = ?2, status = ?3 WHERE arn = ?1")?
        .execute(params![
            row.arn,
            Value::Object(row.doc.clone()).to_string(),
            row.status
        ])?;
    Ok(())
}

/// The `Cluster` shape. `include` lists the optional parts to add
/// (SETTINGS, TAGS, STATISTICS, CONFIGURATIONS, ATTACHMENTS).
pub fn render(conn: &Connection, row: &ClusterRow, include: &[&str]) -> ApiResult<Value> {
    let c = counts(conn, &row.arn)?;
    let mut out = json!({
        "clusterArn": row.arn,
        "clusterName": row.name,
        "status": row.status,
        "registeredContainerInstancesCount": c.registered_instances,
        "runningTasksCount": c.running_tasks,
        "pendingTasksCount": c.pending_tasks,
        "activeServicesCount": c.active_services,
        "statistics": [],
        "tags": [],
        "settings": [],
        "capacityProviders": row.doc.get("capacityProviders").cloned().unwrap_or(json!([])),
        "defaultCapacityProviderStrategy": row.doc.get("defaultCapacityProviderStrategy").cloned().unwrap_or(json!([])),
    });
    let o = out.as_object_mut().unwrap();
    if include.contains(&"SETTINGS") {
        o.insert(
            "settings".into(),
            row.doc
                .get("settings")
                .cloned()
                .unwrap_or_else(default_settings),
        );
    }
    if include.contains(&"TAGS") {
        o.insert("tags".into(), tags::load_json(conn, &row.arn)?);
    }
    if include.contains(&"STATISTICS") {
        // Services arrive later; their counters stay zero until then.
        let stats: Vec<Value> = [
            (
                "runningEC2TasksCount",
                c.running_tasks - c.running_fargate_tasks,
            ),
            ("runningFargateTasksCount", c.running_fargate_tasks),
            (
                "pendingEC2TasksCount",
                c.pending_tasks - c.pending_fargate_tasks,
            ),
            ("pendingFargateTasksCount", c.pending_fargate_tasks),
            ("activeEC2ServiceCount", 0),
            ("activeFargateServiceCount", 0),
            ("drainingEC2ServiceCount", 0),
            ("drainingFargateServiceCount", 0),
        ]
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v.to_string()}))
        .collect();
        o.insert("statistics".into(), Value::Array(stats));
    }
    if include.contains(&"CONFIGURATIONS") {
        if let Some(cfg) = row.doc.get("configuration") {
            o.insert("configuration".into(), cfg.clone());
        }
    }
    if let Some(scd) = row.doc.get("serviceConnectDefaults") {
        o.insert("serviceConnectDefaults".into(), scd.clone());
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateClusterRequest {
    cluster_name: Option<String>,
    #[serde(default)]
    tags: Vec<tags::Tag>,
    #[serde(default)]
    settings: Vec<Value>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeClustersRequest {
    clusters: Option<Vec<String>>,
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListClustersRequest {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteClusterRequest {
    cluster: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateClusterRequest {
    cluster: String,
    settings: Option<Vec<Value>>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
}

const ALL_PARTS: &[&str] = &["SETTINGS", "TAGS", "CONFIGURATIONS"];

impl Ecs {
    pub(super) fn create_cluster(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: CreateClusterRequest = serde_json::from_value(input)?;
        let name = req.cluster_name.unwrap_or_else(|| DEFAULT_CLUSTER.into());
        if !valid_name(&name) {
            return Err(ApiError::invalid_parameter(
                "Cluster names can contain up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores.",
            ));
        }
        check_settings(&req.settings)?;
        tags::check_user_tags(&req.tags)?;
        self.store.write(|tx| {
            super::capacity_providers::check_cluster_providers(
                tx,
                ctx,
                &name,
                req.capacity_providers.as_deref().unwrap_or_default(),
                req.default_capacity_provider_strategy
                    .as_deref()
                    .unwrap_or_default(),
            )?;
            if let Some(existing) = find(tx, ctx, &name)?.filter(|c| c.status == "ACTIVE") {
                // CreateCluster is idempotent by name.
                return Ok(json!({"cluster": render(tx, &existing, ALL_PARTS)?}));
            }
            let mut doc = Map::new();
            doc.insert("settings".into(), Value::Array(req.settings.clone()));
            let optional = [
                ("configuration", req.configuration.clone()),
                (
                    "serviceConnectDefaults",
                    req.service_connect_defaults.clone(),
                ),
                (
                    "capacityProviders",
                    req.capacity_providers.clone().map(|v| json!(v)),
                ),
                (
                    "defaultCapacityProviderStrategy",
                    req.default_capacity_provider_strategy
                        .clone()
                        .map(Value::Array),
                ),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    doc.insert(k.into(), v);
                }
            }
            let row = upsert(tx, ctx, &name, doc)?;
            tags::remove(
                tx,
                &row.arn,
                &tags::load(tx, &row.arn)?
                    .iter()
                    .filter_map(|t| t.key.clone())
                    .collect::<Vec<_>>(),
            )?;
            tags::put(tx, &row.arn, &req.tags)?;
            Ok(json!({"cluster": render(tx, &row, ALL_PARTS)?}))
        })
    }

    pub(super) fn describe_clusters(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DescribeClustersRequest = serde_json::from_value(input)?;
        let names = req
            .clusters
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| vec![DEFAULT_CLUSTER.to_string()]);
        if names.len() > 100 {
            return Err(ApiError::invalid_parameter(
                "At most 100 clusters can be described at once.",
            ));
        }
        let include: Vec<&str> = req.include.iter().map(String::as_str).collect();
        self.store.read(|conn| {
            let mut clusters = Vec::new();
            let mut failures = Vec::new();
            for ident in &names {
                match find(conn, ctx, ident)? {
                    Some(row) => clusters.push(render(conn, &row, &include)?),
                    None => failures.push(json!({
                        "arn": identifier_arn(ctx, ident),
                        "reason": "MISSING",
                    })),
                }
            }
            Ok(json!({"clusters": clusters, "failures": failures}))
        })
    }

    pub(super) fn list_clusters(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: ListClustersRequest = serde_json::from_value(input)?;
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let after = match &req.next_token {
            Some(t) => paging::decode(t)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken."))?,
            None => String::new(),
        };
        self.store.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, arn FROM clusters
                 WHERE account = ?1 AND region = ?2 AND status = 'ACTIVE' AND name > ?3
                 ORDER BY name LIMIT ?4",
            )?;
            let rows: Vec<(String, String)> = stmt
                .query_map(
                    params![ctx.account, ctx.region, after, size as i64 + 1],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            let (page, token) = paging::page(rows, size, |(name, _)| json!(name));
            let arns: Vec<String> = page.into_iter().map(|(_, a)| a).collect();
            let mut out = json!({"clusterArns": arns});
            if let Some(t) = token {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        })
    }

    pub(super) fn delete_cluster(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DeleteClusterRequest = serde_json::from_value(input)?;
        self.store.write(|tx| {
            let mut row = resolve_active(tx, ctx, Some(&req.cluster))?;
            let c = counts(tx, &row.arn)?;
            if c.registered_instances > 0 {
                return Err(ApiError::new(
                    "ClusterContainsContainerInstancesException",
                    "The Cluster cannot be deleted while Container Instances are active or draining.",
                ));
            }
            if c.active_services > 0 {
                return Err(ApiError::new(
                    "ClusterContainsServicesException",
                    "The Cluster cannot be deleted while Services are active.",
                ));
            }
            if c.live_tasks > 0 {
                return Err(ApiError::new(
                    "ClusterContainsTasksException",
                    "The Cluster cannot be deleted while Tasks are active.",
                ));
            }
            row.status = "INACTIVE".into();
            save_doc(tx, &row)?;
            Ok(json!({"cluster": render(tx, &row, ALL_PARTS)?}))
        })
    }

    pub(super) fn update_cluster(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: UpdateClusterRequest = serde_json::from_value(input)?;
        if let Some(s) = &req.settings {
            check_settings(s)?;
        }
        self.store.write(|tx| {
            let mut row = resolve_active(tx, ctx, Some(&req.cluster))?;
            if let Some(s) = &req.settings {
                merge_settings(&mut row.doc, s);
            }
            if let Some(cfg) = &req.configuration {
                row.doc.insert("configuration".into(), cfg.clone());
            }
            if let Some(scd) = &req.service_connect_defaults {
                row.doc.insert("serviceConnectDefaults".into(), scd.clone());
            }
            save_doc(tx, &row)?;
            Ok(json!({"cluster": render(tx, &row, ALL_PARTS)?}))
        })
    }

    pub(super) fn update_cluster_settings(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        // Same shape as UpdateCluster restricted to settings (required here).
        self.update_cluster(ctx, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        assert!(valid_name("web-prod_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(256)));
    }
}
