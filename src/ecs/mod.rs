//! Amazon ECS: the operations, each parsed from its validated JSON input into
//! a typed request, run against the store, and answered in ECS's shapes.
//!
//! Code map: clusters in `clusters.rs`, task definitions in `taskdefs.rs`
//! (their registration rules, pure, in `taskdef_rules.rs`), tasks in
//! `tasks.rs` (the agent in `src/agent` runs them), container instances and
//! attributes in `instances.rs` (placement itself in `src/placement`, each
//! cluster's placement index in `placements.rs`), capacity providers in
//! `capacity_providers.rs`, the sweep of lost tasks and instances in
//! `janitor.rs`, task statuses in `status.rs`, the generated shapes in
//! `shapes.rs`, tags in `tags.rs`, ARNs in `arn.rs`.

pub mod account_settings;
pub mod agent_api;
pub mod arn;
pub mod capacity_providers;
pub mod cli;
pub mod clusters;
pub mod deploy;
pub mod instances;
pub mod janitor;
#[rustfmt::skip]
pub mod shapes;
pub mod placements;
pub mod protection;
pub mod scheduler;
pub mod service_lb;
pub mod services;
#[cfg(test)]
mod services_tests;
pub mod status;
pub mod tags;
pub mod task_sets;
pub mod taskdef_rules;
pub mod taskdefs;
pub mod tasks;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;

use crate::context::Ctx;
use crate::events::{Bus, Topic};
use crate::model;
use crate::settings::Settings;
use crate::store::Store;
use crate::wire::Service;

/// The ECS service: stateless apart from the store, the bus it tells of
/// changes and its settings.
pub struct Ecs {
    pub store: Arc<Store>,
    /// Told of every change another part acts on: tasks to run or stop
    /// (the agent), tasks waiting for capacity (the fleet).
    pub bus: Arc<Bus>,
    pub settings: Arc<Settings>,
    /// Each cluster's placement index, kept across RunTask calls.
    pub placements: placements::Placements,
    /// The Auto Scaling groups behind capacity providers (Auto Scaling's).
    pub groups: Arc<dyn capacity_providers::ScalingGroups>,
    /// Per task definition ARN: whether an essential container has a
    /// health check (the service scheduler's; revisions never change).
    health_checks: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl Ecs {
    pub fn new(
        store: Arc<Store>,
        bus: Arc<Bus>,
        settings: Arc<Settings>,
        groups: Arc<dyn capacity_providers::ScalingGroups>,
    ) -> Ecs {
        Ecs {
            store,
            bus,
            settings,
            placements: placements::Placements::default(),
            groups,
            health_checks: Default::default(),
        }
    }

    /// When agents' connectivity is judged for a call.
    pub fn liveness(&self, ctx: &Ctx) -> instances::Liveness {
        instances::Liveness {
            now_ms: ctx.now_millis(),
            timeout_ms: self.settings.agent_timeout_ms,
        }
    }

    /// The agent has tasks to start or stop.
    pub fn tasks_changed(&self) {
        self.bus.wake(Topic::Tasks);
    }

    /// ECS, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        Service::builder("ECS", "ecs", "ecs", model::ecs(), self)
            .op("CreateCluster", Ecs::create_cluster)
            .op("DescribeClusters", Ecs::describe_clusters)
            .op("ListClusters", Ecs::list_clusters)
            .op("DeleteCluster", Ecs::delete_cluster)
            .op("UpdateCluster", Ecs::update_cluster)
            .op("UpdateClusterSettings", Ecs::update_cluster_settings)
            .op("RegisterTaskDefinition", Ecs::register_task_definition)
            .op("DescribeTaskDefinition", Ecs::describe_task_definition)
            .op("ListTaskDefinitions", Ecs::list_task_definitions)
            .op(
                "ListTaskDefinitionFamilies",
                Ecs::list_task_definition_families,
            )
            .op("DeregisterTaskDefinition", Ecs::deregister_task_definition)
            .op("DeleteTaskDefinitions", Ecs::delete_task_definitions)
            .op("RunTask", Ecs::run_task)
            .op("StopTask", Ecs::stop_task)
            .op("DescribeTasks", Ecs::describe_tasks)
            .op("ListTasks", Ecs::list_tasks)
            .op("StartTask", Ecs::start_task)
            .op(
                "RegisterContainerInstance",
                Ecs::register_container_instance,
            )
            .op(
                "DeregisterContainerInstance",
                Ecs::deregister_container_instance,
            )
            .op(
                "DescribeContainerInstances",
                Ecs::describe_container_instances,
            )
            .op("ListContainerInstances", Ecs::list_container_instances)
            .op(
                "UpdateContainerInstancesState",
                Ecs::update_container_instances_state,
            )
            .op("PutAttributes", Ecs::put_attributes)
            .op("DeleteAttributes", Ecs::delete_attributes)
            .op("ListAttributes", Ecs::list_attributes)
            .op("CreateCapacityProvider", Ecs::create_capacity_provider)
            .op(
                "DescribeCapacityProviders",
                Ecs::describe_capacity_providers,
            )
            .op("UpdateCapacityProvider", Ecs::update_capacity_provider)
            .op("DeleteCapacityProvider", Ecs::delete_capacity_provider)
            .op(
                "PutClusterCapacityProviders",
                Ecs::put_cluster_capacity_providers,
            )
            .op("CreateService", Ecs::create_service)
            .op("UpdateService", Ecs::update_service)
            .op("DeleteService", Ecs::delete_service)
            .op("DescribeServices", Ecs::describe_services)
            .op("ListServices", Ecs::list_services)
            .op("ListServiceDeployments", Ecs::list_service_deployments)
            .op(
                "DescribeServiceDeployments",
                Ecs::describe_service_deployments,
            )
            .op("DescribeServiceRevisions", Ecs::describe_service_revisions)
            .op("StopServiceDeployment", Ecs::stop_service_deployment)
            .op("PutAccountSetting", Ecs::put_account_setting)
            .op("PutAccountSettingDefault", Ecs::put_account_setting_default)
            .op("DeleteAccountSetting", Ecs::delete_account_setting)
            .op("ListAccountSettings", Ecs::list_account_settings)
            .op("UpdateTaskProtection", Ecs::update_task_protection)
            .op("GetTaskProtection", Ecs::get_task_protection)
            .op("DiscoverPollEndpoint", Ecs::discover_poll_endpoint)
            .op("UpdateContainerAgent", Ecs::update_container_agent)
            .op("SubmitTaskStateChange", Ecs::submit_task_state_change)
            .op(
                "SubmitContainerStateChange",
                Ecs::submit_container_state_change,
            )
            .op(
                "SubmitAttachmentStateChanges",
                Ecs::submit_attachment_state_changes,
            )
            .op("ListServicesByNamespace", Ecs::list_services_by_namespace)
            .op(
                "ContinueServiceDeployment",
                Ecs::continue_service_deployment,
            )
            .op("CreateTaskSet", Ecs::create_task_set)
            .op("DescribeTaskSets", Ecs::describe_task_sets)
            .op("UpdateTaskSet", Ecs::update_task_set)
            .op("DeleteTaskSet", Ecs::delete_task_set)
            .op(
                "UpdateServicePrimaryTaskSet",
                Ecs::update_service_primary_task_set,
            )
            .op("TagResource", Ecs::tag_resource)
            .op("UntagResource", Ecs::untag_resource)
            .op("ListTagsForResource", Ecs::list_tags_for_resource)
            .resources(resources)
            .build()
    }
}

/// Describe each of `idents` as every ECS `Describe*` does: what `find`
/// finds (`Ok`), and for the rest (`Err` with the ARN the identifier stands
/// for) a `MISSING` failure.
pub(crate) fn describe_each<I, T>(
    idents: &[I],
    mut find: impl FnMut(&I) -> crate::error::ApiResult<Result<T, String>>,
) -> crate::error::ApiResult<(Vec<T>, Vec<shapes::Failure>)> {
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for ident in idents {
        match find(ident)? {
            Ok(t) => found.push(t),
            Err(arn) => failures.push(missing(arn)),
        }
    }
    Ok((found, failures))
}

/// The failure of a resource an ECS call names that does not exist.
pub(crate) fn missing(arn: String) -> shapes::Failure {
    shapes::Failure {
        arn: Some(arn),
        reason: Some("MISSING".into()),
        ..shapes::Failure::default()
    }
}

/// The ARNs of the resources an ECS call acts on, for authorization: the
/// cluster it names (`default` when it names none) and the tasks, task
/// definitions, container instances, capacity providers or tagged
/// resource it names.
fn resources(ctx: &Ctx, operation: &str, input: &Value) -> Vec<String> {
    let text = |k: &str| input.get(k).and_then(Value::as_str);
    let list = |k: &str| -> Vec<&str> {
        input
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let cluster_scoped = !matches!(
        operation,
        "CreateCluster" | "ListClusters" | "DescribeClusters" | "DeleteCluster"
    ) && !operation.contains("TaskDefinition")
        && !operation.contains("CapacityProvider")
        && !operation.contains("AccountSetting")
        && !operation.ends_with("Resource");
    let cluster_name = text("cluster").unwrap_or(clusters::DEFAULT_CLUSTER);
    let cluster = clusters::identifier_arn(ctx, cluster_name);
    let named = |kind: &str, ident: &str| {
        if ident.starts_with("arn:") {
            ident.to_string()
        } else {
            let name = cluster.rsplit('/').next().unwrap_or_default();
            arn::in_cluster(ctx, kind, name, ident)
        }
    };
    let mut out = Vec::new();
    match operation {
        "CreateCluster" => out.push(arn::cluster(ctx, text("clusterName").unwrap_or("default"))),
        "DescribeClusters" => out.extend(
            list("clusters")
                .iter()
                .map(|c| clusters::identifier_arn(ctx, c)),
        ),
        "DeleteCluster" => out.push(cluster.clone()),
        _ if cluster_scoped => out.push(cluster.clone()),
        _ => {}
    }
    if let Some(td) = text("taskDefinition") {
        out.push(if td.starts_with("arn:") {
            td.to_string()
        } else {
            arn::of(ctx, &format!("task-definition/{td}"))
        });
    }
    for t in text("task").into_iter().chain(list("tasks")) {
        out.push(named("task", t));
    }
    for ci in text("containerInstance")
        .into_iter()
        .chain(list("containerInstances"))
    {
        out.push(named("container-instance", ci));
    }
    for svc in text("service").into_iter().chain(list("services")) {
        out.push(named("service", svc));
    }
    if operation == "CreateService" {
        if let Some(name) = text("serviceName") {
            out.push(named("service", name));
        }
    }
    if let Some(r) = text("resourceArn") {
        out.push(r.to_string());
    }
    if out.is_empty() {
        out.push("*".into());
    }
    out
}
