//! Clusters: `CreateCluster`, `DescribeClusters`, `ListClusters`,
//! `DeleteCluster`, `UpdateCluster`, `UpdateClusterSettings`.
//!
//! A cluster row keeps its name, status and creation time in columns and the
//! rest (settings, configuration, capacity providers…) as a typed document,
//! [`ClusterDoc`]. A deleted cluster stays as INACTIVE, still describable, as
//! in ECS; creating it again makes it ACTIVE with the new parameters.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::shapes::{
    CapacityProviderStrategyItem, Cluster, ClusterConfiguration, ClusterField,
    ClusterServiceConnectDefaults, ClusterServiceConnectDefaultsRequest, ClusterSetting,
    ClusterSettingName, CreateClusterRequest, CreateClusterResponse, DeleteClusterRequest,
    DeleteClusterResponse, DescribeClustersRequest, DescribeClustersResponse, KeyValuePair,
    ListClustersRequest, ListClustersResponse, UpdateClusterRequest, UpdateClusterResponse,
    UpdateClusterSettingsRequest, UpdateClusterSettingsResponse,
};
use super::{arn, describe_each, tags, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::paging;

pub const DEFAULT_CLUSTER: &str = "default";

/// What a cluster keeps beyond its name and status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDoc {
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ClusterConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<ClusterServiceConnectDefaults>,
    /// The capacity providers associated with the cluster.
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterStatus {
    Active,
    Inactive,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Inactive => "INACTIVE",
        }
    }

    fn parse(s: &str) -> ClusterStatus {
        if s == "ACTIVE" {
            ClusterStatus::Active
        } else {
            ClusterStatus::Inactive
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterRow {
    pub arn: String,
    pub name: String,
    pub status: ClusterStatus,
    pub doc: ClusterDoc,
}

impl ClusterRow {
    pub fn is_active(&self) -> bool {
        self.status == ClusterStatus::Active
    }
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

/// Counters for one cluster, from the tables of what it holds.
pub fn counts(conn: &Connection, cluster_arn: &str) -> ApiResult<Counts> {
    let t = super::tasks::cluster_task_counts(conn, cluster_arn)?;
    Ok(Counts {
        running_tasks: t.running,
        pending_tasks: t.pending,
        running_fargate_tasks: t.running_fargate,
        pending_fargate_tasks: t.pending_fargate,
        live_tasks: t.live,
        registered_instances: super::instances::registered_count(conn, cluster_arn)?,
        active_services: super::services::active_count(conn, cluster_arn)?,
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
            status: ClusterStatus::parse(&status),
            doc: serde_json::from_str(&doc).map_err(|e| ApiError::internal(e.to_string()))?,
        })
    })
    .transpose()
}

/// The names of the ACTIVE clusters of the caller's account and region
/// with their documents.
pub fn active_docs(conn: &Connection, ctx: &Ctx) -> ApiResult<Vec<(String, ClusterDoc)>> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT name, doc FROM clusters WHERE account = ?1 AND region = ?2 AND status = 'ACTIVE'",
        )?
        .query_map(params![ctx.account, ctx.region], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(name, doc)| {
            let doc = serde_json::from_str(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok((name, doc))
        })
        .collect()
}

/// The ACTIVE cluster a call names (or `default` when it names none), or
/// `ClusterNotFoundException`.
pub fn resolve_active(conn: &Connection, ctx: &Ctx, ident: Option<&str>) -> ApiResult<ClusterRow> {
    match find(conn, ctx, ident.unwrap_or(DEFAULT_CLUSTER))? {
        Some(c) if c.is_active() => Ok(c),
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
        if let Some(c) = find(conn, ctx, DEFAULT_CLUSTER)?.filter(ClusterRow::is_active) {
            return Ok(c);
        }
        return upsert(conn, ctx, DEFAULT_CLUSTER, ClusterDoc::default());
    }
    resolve_active(conn, ctx, ident)
}

fn default_settings() -> Vec<ClusterSetting> {
    vec![ClusterSetting {
        name: Some(ClusterSettingName::ContainerInsights),
        value: Some("disabled".into()),
    }]
}

fn check_settings(settings: &[ClusterSetting]) -> ApiResult<()> {
    for s in settings {
        if s.name.is_none() {
            return Err(ApiError::invalid_parameter(
                "Cluster setting name must be containerInsights.",
            ));
        }
        let value = s.value.as_deref();
        if !matches!(value, Some("enabled" | "disabled" | "enhanced")) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid value '{}' for the containerInsights setting: use enabled, disabled or enhanced.",
                value.unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// Merge settings by name into the existing ones (the defaults when there
/// are none yet).
fn merge_settings(doc: &mut ClusterDoc, new: &[ClusterSetting]) {
    if doc.settings.is_empty() {
        doc.settings = default_settings();
    }
    for s in new {
        match doc.settings.iter_mut().find(|c| c.name == s.name) {
            Some(c) => *c = s.clone(),
            None => doc.settings.push(s.clone()),
        }
    }
}

fn connect_defaults(
    req: Option<ClusterServiceConnectDefaultsRequest>,
) -> Option<ClusterServiceConnectDefaults> {
    req.map(|r| ClusterServiceConnectDefaults {
        namespace: Some(r.namespace),
    })
}

/// Create the cluster, or make an INACTIVE one ACTIVE again with `doc`
/// (whose settings are merged into the defaults).
fn upsert(conn: &Connection, ctx: &Ctx, name: &str, mut doc: ClusterDoc) -> ApiResult<ClusterRow> {
    let arn = arn::cluster(ctx, name);
    let new_settings = std::mem::take(&mut doc.settings);
    // A new cluster's Container Insights follow the caller's account
    // setting unless the call names its own.
    doc.settings = vec![ClusterSetting {
        name: Some(ClusterSettingName::ContainerInsights),
        value: Some(super::account_settings::value_for(
            conn,
            ctx,
            super::shapes::SettingName::ContainerInsights,
        )?),
    }];
    merge_settings(&mut doc, &new_settings);
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
        serde_json::to_string(&doc)?
    ])?;
    Ok(ClusterRow {
        arn,
        name: name.to_string(),
        status: ClusterStatus::Active,
        doc,
    })
}

pub(crate) fn save_doc(conn: &Connection, row: &ClusterRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE clusters SET doc = ?2, status = ?3 WHERE arn = ?1")?
        .execute(params![
            row.arn,
            serde_json::to_string(&row.doc)?,
            row.status.as_str()
        ])?;
    Ok(())
}

/// The `Cluster` shape. `include` lists the optional parts to add
/// (SETTINGS, TAGS, STATISTICS, CONFIGURATIONS); ATTACHMENTS has none yet.
pub fn render(conn: &Connection, row: &ClusterRow, include: &[ClusterField]) -> ApiResult<Cluster> {
    let c = counts(conn, &row.arn)?;
    let has = |f: ClusterField| include.contains(&f);
    let statistics = if has(ClusterField::Statistics) {
        let [active_ec2, active_fargate, draining_ec2, draining_fargate] =
            super::services::statistics(conn, &row.arn)?;
        [
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
            ("activeEC2ServiceCount", active_ec2),
            ("activeFargateServiceCount", active_fargate),
            ("drainingEC2ServiceCount", draining_ec2),
            ("drainingFargateServiceCount", draining_fargate),
        ]
        .iter()
        .map(|(n, v)| KeyValuePair {
            name: Some(n.to_string()),
            value: Some(v.to_string()),
        })
        .collect()
    } else {
        Vec::new()
    };
    let settings = if has(ClusterField::Settings) {
        if row.doc.settings.is_empty() {
            default_settings()
        } else {
            row.doc.settings.clone()
        }
    } else {
        Vec::new()
    };
    Ok(Cluster {
        cluster_arn: Some(row.arn.clone()),
        cluster_name: Some(row.name.clone()),
        status: Some(row.status.as_str().into()),
        registered_container_instances_count: Some(c.registered_instances),
        running_tasks_count: Some(c.running_tasks),
        pending_tasks_count: Some(c.pending_tasks),
        active_services_count: Some(c.active_services),
        statistics: Some(statistics),
        tags: Some(if has(ClusterField::Tags) {
            tags::load(conn, &row.arn)?
        } else {
            Vec::new()
        }),
        settings: Some(settings),
        capacity_providers: Some(row.doc.capacity_providers.clone()),
        default_capacity_provider_strategy: Some(
            row.doc.default_capacity_provider_strategy.clone(),
        ),
        configuration: row
            .doc
            .configuration
            .clone()
            .filter(|_| has(ClusterField::Configurations)),
        service_connect_defaults: row.doc.service_connect_defaults.clone(),
        ..Cluster::default()
    })
}

/// What a write answers with.
pub const ALL_PARTS: &[ClusterField] = &[
    ClusterField::Settings,
    ClusterField::Tags,
    ClusterField::Configurations,
];

impl Ecs {
    pub(super) fn create_cluster(
        &self,
        ctx: &Ctx,
        req: CreateClusterRequest,
    ) -> ApiResult<CreateClusterResponse> {
        let name = req.cluster_name.unwrap_or_else(|| DEFAULT_CLUSTER.into());
        if !valid_name(&name) {
            return Err(ApiError::invalid_parameter(
                "Cluster names can contain up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores.",
            ));
        }
        let settings = req.settings.unwrap_or_default();
        check_settings(&settings)?;
        let user_tags = tags::from_shapes(req.tags.as_deref().unwrap_or_default());
        tags::check_user_tags(&user_tags)?;
        let doc = ClusterDoc {
            settings,
            configuration: req.configuration,
            service_connect_defaults: connect_defaults(req.service_connect_defaults),
            capacity_providers: req.capacity_providers.unwrap_or_default(),
            default_capacity_provider_strategy: req
                .default_capacity_provider_strategy
                .unwrap_or_default(),
        };
        self.store.write(|tx| {
            super::capacity_providers::check_cluster_providers(
                tx,
                ctx,
                &name,
                &doc.capacity_providers,
                &doc.default_capacity_provider_strategy,
            )?;
            if let Some(existing) = find(tx, ctx, &name)?.filter(ClusterRow::is_active) {
                // CreateCluster is idempotent by name.
                return Ok(CreateClusterResponse {
                    cluster: Some(render(tx, &existing, ALL_PARTS)?),
                });
            }
            let row = upsert(tx, ctx, &name, doc.clone())?;
            tags::remove(
                tx,
                &row.arn,
                &tags::load(tx, &row.arn)?
                    .iter()
                    .filter_map(|t| t.key.clone())
                    .collect::<Vec<_>>(),
            )?;
            tags::put(tx, &row.arn, &user_tags)?;
            Ok(CreateClusterResponse {
                cluster: Some(render(tx, &row, ALL_PARTS)?),
            })
        })
    }

    pub(super) fn describe_clusters(
        &self,
        ctx: &Ctx,
        req: DescribeClustersRequest,
    ) -> ApiResult<DescribeClustersResponse> {
        let names = req
            .clusters
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| vec![DEFAULT_CLUSTER.to_string()]);
        if names.len() > 100 {
            return Err(ApiError::invalid_parameter(
                "At most 100 clusters can be described at once.",
            ));
        }
        let include = req.include.unwrap_or_default();
        self.store.read(|conn| {
            let (clusters, failures) = describe_each(&names, |ident| {
                Ok(match find(conn, ctx, ident)? {
                    Some(row) => Ok(render(conn, &row, &include)?),
                    None => Err(identifier_arn(ctx, ident)),
                })
            })?;
            Ok(DescribeClustersResponse {
                clusters: Some(clusters),
                failures: Some(failures),
            })
        })
    }

    pub(super) fn list_clusters(
        &self,
        ctx: &Ctx,
        req: ListClustersRequest,
    ) -> ApiResult<ListClustersResponse> {
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let after = match &req.next_token {
            Some(t) => paging::decode_as::<String>(t)?,
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
            let (page, next_token) = paging::page(rows, size, |(name, _)| name.clone().into());
            Ok(ListClustersResponse {
                cluster_arns: Some(page.into_iter().map(|(_, a)| a).collect()),
                next_token,
            })
        })
    }

    pub(super) fn delete_cluster(
        &self,
        ctx: &Ctx,
        req: DeleteClusterRequest,
    ) -> ApiResult<DeleteClusterResponse> {
        self.store.write(|tx| {
            let mut row = resolve_active(tx, ctx, Some(&req.cluster))?;
            let c = counts(tx, &row.arn)?;
            if c.registered_instances > 0 {
                return Err(ApiError::new(
                    "ClusterContainsContainerInstancesException",
                    "The Cluster cannot be deleted while Container Instances are active or draining.",
                ));
            }
            if super::services::live_count(tx, &row.arn)? > 0 {
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
            row.status = ClusterStatus::Inactive;
            save_doc(tx, &row)?;
            Ok(DeleteClusterResponse {
                cluster: Some(render(tx, &row, ALL_PARTS)?),
            })
        })
    }

    fn update(
        &self,
        ctx: &Ctx,
        cluster: &str,
        settings: Option<&[ClusterSetting]>,
        configuration: Option<ClusterConfiguration>,
        service_connect_defaults: Option<ClusterServiceConnectDefaults>,
    ) -> ApiResult<Cluster> {
        if let Some(s) = settings {
            check_settings(s)?;
        }
        self.store.write(|tx| {
            let mut row = resolve_active(tx, ctx, Some(cluster))?;
            if let Some(s) = settings {
                merge_settings(&mut row.doc, s);
            }
            if let Some(cfg) = &configuration {
                row.doc.configuration = Some(cfg.clone());
            }
            if let Some(scd) = &service_connect_defaults {
                row.doc.service_connect_defaults = Some(scd.clone());
            }
            save_doc(tx, &row)?;
            render(tx, &row, ALL_PARTS)
        })
    }

    pub(super) fn update_cluster(
        &self,
        ctx: &Ctx,
        req: UpdateClusterRequest,
    ) -> ApiResult<UpdateClusterResponse> {
        let cluster = self.update(
            ctx,
            &req.cluster,
            req.settings.as_deref(),
            req.configuration,
            connect_defaults(req.service_connect_defaults),
        )?;
        Ok(UpdateClusterResponse {
            cluster: Some(cluster),
        })
    }

    pub(super) fn update_cluster_settings(
        &self,
        ctx: &Ctx,
        req: UpdateClusterSettingsRequest,
    ) -> ApiResult<UpdateClusterSettingsResponse> {
        let cluster = self.update(ctx, &req.cluster, Some(&req.settings), None, None)?;
        Ok(UpdateClusterSettingsResponse {
            cluster: Some(cluster),
        })
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

    #[test]
    fn settings_merge_into_the_defaults_by_name() {
        let mut doc = ClusterDoc::default();
        merge_settings(&mut doc, &[]);
        assert_eq!(doc.settings, default_settings());
        let enhanced = ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights),
            value: Some("enhanced".into()),
        };
        merge_settings(&mut doc, std::slice::from_ref(&enhanced));
        assert_eq!(doc.settings, vec![enhanced]);
    }

    #[test]
    fn a_stored_document_of_before_reads() {
        let doc: ClusterDoc = serde_json::from_str(
            r#"{"settings":[{"name":"containerInsights","value":"enabled"}],"capacityProviders":["cp"],
               "defaultCapacityProviderStrategy":[{"capacityProvider":"cp","weight":1}],
               "serviceConnectDefaults":{"namespace":"ns"}}"#,
        )
        .unwrap();
        assert_eq!(doc.capacity_providers, ["cp"]);
        assert_eq!(doc.default_capacity_provider_strategy[0].weight, Some(1));
        assert_eq!(
            doc.service_connect_defaults.unwrap().namespace.as_deref(),
            Some("ns")
        );
    }
}
