//! The operations ECS keeps for container agents: DiscoverPollEndpoint,
//! SubmitTaskStateChange, SubmitContainerStateChange,
//! SubmitAttachmentStateChanges and UpdateContainerAgent.
//!
//! Berth's own agents (the server's, and `berth agent` elsewhere) report
//! through Berth's agent API; these let any other agent that registered an
//! instance with RegisterContainerInstance report the tasks placed on it
//! the way the ECS agent does. A report moves a task (or container) only
//! forward through its lifecycle; tasks run by Berth's own agents are theirs
//! to report and are refused here.

use rusqlite::Connection;

use super::instances;
use super::shapes::{
    ContainerStateChange, DiscoverPollEndpointRequest, DiscoverPollEndpointResponse,
    SubmitAttachmentStateChangesRequest, SubmitAttachmentStateChangesResponse,
    SubmitContainerStateChangeRequest, SubmitContainerStateChangeResponse,
    SubmitTaskStateChangeRequest, SubmitTaskStateChangeResponse, UpdateContainerAgentRequest,
    UpdateContainerAgentResponse,
};
use super::status::TaskStatus;
use super::{arn, clusters, tasks, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::events::Topic;

const ACK: &str = "ACK";

fn status(s: &str) -> ApiResult<TaskStatus> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| ApiError::invalid_parameter(format!("Invalid status '{s}'.")))
}

/// The task a report names, in the cluster it names, run by an agent that
/// reports through this API; the report is word from its instance's agent.
fn reported_task(
    conn: &Connection,
    ctx: &Ctx,
    at: instances::Liveness,
    cluster: Option<&str>,
    task: Option<&str>,
) -> ApiResult<tasks::TaskRow> {
    let cluster = clusters::resolve_active(conn, ctx, cluster)?;
    let ident = task.ok_or_else(|| ApiError::invalid_parameter("A task must be specified."))?;
    let task_arn = arn::resolve_in_cluster(ctx, "task", &cluster.name, ident);
    let t = tasks::load(conn, &task_arn)?
        .filter(|t| t.cluster_arn == cluster.arn)
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("The task {task_arn} does not exist."))
        })?;
    let external = match &t.doc.container_instance_arn {
        Some(i) => instances::load(conn, i)?.is_some_and(|i| i.agent == instances::REMOTE_AGENT),
        None => false,
    };
    if !external {
        return Err(ApiError::invalid_parameter(format!(
            "The task {task_arn} is run by Berth's own agent, which reports its state."
        )));
    }
    if let Some(i) = &t.doc.container_instance_arn {
        instances::heard_from(conn, i, at)?;
    }
    Ok(t)
}

/// Apply one container's report to the task document.
fn apply_container(t: &mut tasks::TaskRow, c: &ContainerStateChange) -> ApiResult<()> {
    let name = c.container_name.as_deref().unwrap_or_default();
    let Some(container) = t
        .doc
        .containers
        .iter_mut()
        .flatten()
        .find(|x| x.name.as_deref() == Some(name))
    else {
        return Err(ApiError::invalid_parameter(format!(
            "The task has no container named '{name}'."
        )));
    };
    if let Some(s) = c.status.as_deref() {
        let s = status(s)?;
        if container.last_status.is_none_or(|now| s >= now) {
            container.last_status = Some(s);
        }
    }
    if c.exit_code.is_some() {
        container.exit_code = c.exit_code;
    }
    if c.reason.is_some() {
        container.reason = c.reason.clone();
    }
    if c.runtime_id.is_some() {
        container.runtime_id = c.runtime_id.clone();
    }
    if c.image_digest.is_some() {
        container.image_digest = c.image_digest.clone();
    }
    if c.network_bindings.is_some() {
        container.network_bindings = c.network_bindings.clone();
    }
    Ok(())
}

/// Move the task forward to `s` as reported at `now`.
fn apply_task_status(t: &mut tasks::TaskRow, s: TaskStatus, reason: Option<&str>, now: f64) {
    if s < t.last_status() {
        return;
    }
    t.doc.last_status = Some(s);
    if s >= TaskStatus::Running && t.doc.started_at.is_none() {
        t.doc.started_at = Some(now);
    }
    if s == TaskStatus::Stopped {
        t.doc.stopped_at.get_or_insert(now);
        t.doc.stopping_at.get_or_insert(now);
        if t.doc.stopped_reason.is_none() {
            t.doc.stopped_reason = reason.map(String::from);
        }
    }
}

impl Ecs {
    pub(super) fn discover_poll_endpoint(
        &self,
        ctx: &Ctx,
        req: DiscoverPollEndpointRequest,
    ) -> ApiResult<DiscoverPollEndpointResponse> {
        if let Some(c) = req.cluster.as_deref() {
            let at = self.liveness(ctx);
            self.store.write(|tx| {
                let cluster = clusters::resolve_active(tx, ctx, Some(c))?;
                // An agent asks where to poll as it starts: it is heard from.
                if let Some(ident) = req.container_instance.as_deref() {
                    let ci =
                        arn::resolve_in_cluster(ctx, "container-instance", &cluster.name, ident);
                    if instances::load(tx, &ci)?.is_some_and(|i| {
                        i.cluster_arn == cluster.arn && i.agent == instances::REMOTE_AGENT
                    }) {
                        instances::heard_from(tx, &ci, at)?;
                    }
                }
                Ok(())
            })?;
        }
        let endpoint = self.settings.endpoint.clone();
        Ok(DiscoverPollEndpointResponse {
            endpoint: Some(endpoint.clone()),
            telemetry_endpoint: Some(endpoint.clone()),
            service_connect_endpoint: Some(endpoint),
        })
    }

    pub(super) fn update_container_agent(
        &self,
        ctx: &Ctx,
        req: UpdateContainerAgentRequest,
    ) -> ApiResult<UpdateContainerAgentResponse> {
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let ci = arn::resolve_in_cluster(
                ctx,
                "container-instance",
                &cluster.name,
                &req.container_instance,
            );
            if instances::load(conn, &ci)?.is_none_or(|i| i.cluster_arn != cluster.arn) {
                return Err(ApiError::invalid_parameter(format!(
                    "The container instance {ci} does not exist in the cluster."
                )));
            }
            // Berth's agent is part of Berth: it is always the newest there is.
            Err(ApiError::new(
                "NoUpdateAvailableException",
                format!(
                    "There is no update available for your container agent: it runs version {}, the newest.",
                    instances::AGENT_VERSION
                ),
            ))
        })
    }

    pub(super) fn submit_task_state_change(
        &self,
        ctx: &Ctx,
        req: SubmitTaskStateChangeRequest,
    ) -> ApiResult<SubmitTaskStateChangeResponse> {
        let at = self.liveness(ctx);
        let s = req.status.as_deref().map(status).transpose()?;
        self.store.write(|tx| {
            let mut t = reported_task(tx, ctx, at, req.cluster.as_deref(), req.task.as_deref())?;
            for c in req.containers.iter().flatten() {
                apply_container(&mut t, c)?;
            }
            if let Some(s) = s {
                apply_task_status(&mut t, s, req.reason.as_deref(), ctx.now_epoch());
            }
            if req.pull_started_at.is_some() {
                t.doc.pull_started_at = req.pull_started_at;
            }
            if req.pull_stopped_at.is_some() {
                t.doc.pull_stopped_at = req.pull_stopped_at;
            }
            if req.execution_stopped_at.is_some() {
                t.doc.execution_stopped_at = req.execution_stopped_at;
            }
            for a in req.attachments.iter().flatten() {
                set_attachment(&mut t, &a.attachment_arn, &a.status);
            }
            tasks::save_observed(tx, &t)
        })?;
        self.bus.wake(Topic::Services);
        Ok(SubmitTaskStateChangeResponse {
            acknowledgment: Some(ACK.into()),
        })
    }

    pub(super) fn submit_container_state_change(
        &self,
        ctx: &Ctx,
        req: SubmitContainerStateChangeRequest,
    ) -> ApiResult<SubmitContainerStateChangeResponse> {
        let at = self.liveness(ctx);
        self.store.write(|tx| {
            let mut t = reported_task(tx, ctx, at, req.cluster.as_deref(), req.task.as_deref())?;
            apply_container(
                &mut t,
                &ContainerStateChange {
                    container_name: req.container_name.clone(),
                    exit_code: req.exit_code,
                    network_bindings: req.network_bindings.clone(),
                    reason: req.reason.clone(),
                    runtime_id: req.runtime_id.clone(),
                    status: req.status.clone(),
                    image_digest: None,
                },
            )?;
            tasks::save_observed(tx, &t)
        })?;
        self.bus.wake(Topic::Services);
        Ok(SubmitContainerStateChangeResponse {
            acknowledgment: Some(ACK.into()),
        })
    }

    pub(super) fn submit_attachment_state_changes(
        &self,
        ctx: &Ctx,
        req: SubmitAttachmentStateChangesRequest,
    ) -> ApiResult<SubmitAttachmentStateChangesResponse> {
        let at = self.liveness(ctx);
        self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            for a in &req.attachments {
                let id = a.attachment_arn.rsplit('/').next().unwrap_or_default();
                let Some(task_arn) = tasks::with_attachment(tx, &cluster.arn, id)? else {
                    return Err(ApiError::invalid_parameter(format!(
                        "The attachment {} does not exist.",
                        a.attachment_arn
                    )));
                };
                let mut t = reported_task(tx, ctx, at, Some(&cluster.arn), Some(&task_arn))?;
                set_attachment(&mut t, &a.attachment_arn, &a.status);
                tasks::save_observed(tx, &t)?;
            }
            Ok(())
        })?;
        Ok(SubmitAttachmentStateChangesResponse {
            acknowledgment: Some(ACK.into()),
        })
    }
}

fn set_attachment(t: &mut tasks::TaskRow, attachment_arn: &str, s: &str) {
    let id = attachment_arn.rsplit('/').next().unwrap_or_default();
    for a in t.doc.attachments.iter_mut().flatten() {
        if a.id.as_deref() == Some(id) {
            a.status = Some(s.to_string());
        }
    }
}
