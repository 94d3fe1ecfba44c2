//! Amazon ECS: the operations, each parsed from its validated JSON input into
//! a typed request, run against the store, and answered in ECS's shapes.
//!
//! Code map: clusters in `clusters.rs`, task definitions in `taskdefs.rs`
//! (their registration rules, pure, in `taskdef_rules.rs`), tasks in
//! `tasks.rs` (the agent in `src/agent` runs them), container instances and
//! attributes in `instances.rs` (placement itself in `src/placement`), tags in
//! `tags.rs`, ARNs in `arn.rs`, pagination tokens in `paging.rs`.

pub mod arn;
pub mod capacity_providers;
pub mod clusters;
pub mod instances;
pub mod paging;
pub mod tags;
pub mod taskdef_rules;
pub mod taskdefs;
pub mod tasks;

use std::sync::Arc;

use serde_json::Value;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// The ECS service: stateless apart from the store it is given.
pub struct Ecs {
    pub store: Arc<Store>,
    /// Woken whenever a task's desired state changes, so the agent acts at
    /// once instead of at its next tick.
    pub task_events: Arc<tokio::sync::Notify>,
}

impl Ecs {
    pub fn new(store: Arc<Store>) -> Ecs {
        Ecs {
            store,
            task_events: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Run one operation. `input` has already been validated against the
    /// ECS model by the wire layer.
    pub fn handle(&self, ctx: &Ctx, operation: &str, input: Value) -> ApiResult<Value> {
        match operation {
            "CreateCluster" => self.create_cluster(ctx, input),
            "DescribeClusters" => self.describe_clusters(ctx, input),
            "ListClusters" => self.list_clusters(ctx, input),
            "DeleteCluster" => self.delete_cluster(ctx, input),
            "UpdateCluster" => self.update_cluster(ctx, input),
            "UpdateClusterSettings" => self.update_cluster_settings(ctx, input),
            "RegisterTaskDefinition" => self.register_task_definition(ctx, input),
            "DescribeTaskDefinition" => self.describe_task_definition(ctx, input),
            "ListTaskDefinitions" => self.list_task_definitions(ctx, input),
            "ListTaskDefinitionFamilies" => self.list_task_definition_families(ctx, input),
            "DeregisterTaskDefinition" => self.deregister_task_definition(ctx, input),
            "DeleteTaskDefinitions" => self.delete_task_definitions(ctx, input),
            "RunTask" => self.run_task(ctx, input),
            "StopTask" => self.stop_task(ctx, input),
            "DescribeTasks" => self.describe_tasks(ctx, input),
            "ListTasks" => self.list_tasks(ctx, input),
            "StartTask" => self.start_task(ctx, input),
            "RegisterContainerInstance" => self.register_container_instance(ctx, input),
            "DeregisterContainerInstance" => self.deregister_container_instance(ctx, input),
            "DescribeContainerInstances" => self.describe_container_instances(ctx, input),
            "ListContainerInstances" => self.list_container_instances(ctx, input),
            "UpdateContainerInstancesState" => self.update_container_instances_state(ctx, input),
            "PutAttributes" => self.put_attributes(ctx, input),
            "DeleteAttributes" => self.delete_attributes(ctx, input),
            "ListAttributes" => self.list_attributes(ctx, input),
            "CreateCapacityProvider" => self.create_capacity_provider(ctx, input),
            "DescribeCapacityProviders" => self.describe_capacity_providers(ctx, input),
            "UpdateCapacityProvider" => self.update_capacity_provider(ctx, input),
            "DeleteCapacityProvider" => self.delete_capacity_provider(ctx, input),
            "PutClusterCapacityProviders" => self.put_cluster_capacity_providers(ctx, input),
            "TagResource" => self.tag_resource(ctx, input),
            "UntagResource" => self.untag_resource(ctx, input),
            "ListTagsForResource" => self.list_tags_for_resource(ctx, input),
            other => Err(ApiError::unknown_operation(format!(
                "Berth does not implement the ECS operation {other} yet."
            ))),
        }
    }
}
