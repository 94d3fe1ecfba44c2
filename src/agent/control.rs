//! What the agent needs from the control plane, and its two sources: the
//! store itself (the agent inside `berth server`, for FARGATE tasks and local
//! container instances) and a server over the API (`berth agent` on another
//! machine, for the tasks placed on its container instance).
//!
//! The remote side speaks the `Agent*` operations of Berth's own API
//! (`Berth_20261123`, see `src/platform.rs`), SigV4-signed like every call;
//! the server lets an agent read and write only the tasks placed on its own
//! instance.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;

use super::awslogs::Target;
use crate::client::{Client, ClientError};
use crate::ecs::shapes::{TaskDefinition, TaskStopCode};
use crate::ecs::status::TaskStatus;
use crate::ecs::taskdefs;
use crate::ecs::tasks::{self, TaskRow, TaskRuntime};
use crate::logs::Logs;
use crate::store::Store;

/// The calls the agent makes to the control plane.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    /// The tasks this agent drives that are not yet STOPPED. For a remote
    /// agent this is also its heartbeat.
    async fn live_tasks(&self) -> anyhow::Result<Vec<String>>;
    /// A task row, as stored; `None` when there is no such task.
    async fn load_task(&self, arn: &str) -> anyhow::Result<Option<TaskRow>>;
    /// The task definition document of a task (by the task's ARN and the
    /// definition's ARN); `None` when it is gone.
    async fn load_task_definition(
        &self,
        task_arn: &str,
        td_arn: &str,
    ) -> anyhow::Result<Option<TaskDefinition>>;
    /// Save what the agent observed (`tasks::save_observed`).
    async fn save_task(&self, task: &TaskRow) -> anyhow::Result<()>;
    /// Ask for a task to stop (`tasks::request_stop`; the first reason wins).
    async fn request_stop(&self, arn: &str, code: TaskStopCode, reason: &str)
        -> anyhow::Result<()>;
    /// Where, and with what credentials, an image that names one of this
    /// control plane's ECR registries (`<account>.dkr.ecr.<region>.amazonaws.com/…`)
    /// is pulled: the same image in Berth's registry. `None` for any other
    /// image, and where no registry is at hand. A task of `account` pulls
    /// only from its own account's registry.
    async fn registry_pull(
        &self,
        _image: &str,
        _account: &str,
    ) -> anyhow::Result<Option<RegistryPull>> {
        Ok(None)
    }
    /// The values of container secrets (`valueFrom`s, in order) for a task
    /// of `account` in `region`, read as its execution role; `Err` is the
    /// task's stopped reason, in ECS's words.
    async fn resolve_secrets(
        &self,
        _account: &str,
        _region: &str,
        value_froms: &[String],
    ) -> Result<Vec<String>, String> {
        if value_froms.is_empty() {
            return Ok(Vec::new());
        }
        Err(format!(
            "{}: no parameter store or secrets manager is reachable from this agent",
            super::secrets::FAILED
        ))
    }
    /// Whether a task exists and is not STOPPED (the orphan sweep keeps
    /// its containers).
    async fn task_live(&self, arn: &str) -> anyhow::Result<bool> {
        Ok(self
            .load_task(arn)
            .await?
            .is_some_and(|t| t.last_status() != TaskStatus::Stopped))
    }
    /// Make an awslogs target's group (when it asks to) and stream exist.
    /// `Err` is the service's error as `code: message`.
    async fn prepare_log_stream(&self, t: &Target) -> Result<(), String>;
    /// The timestamp of the newest event of a stream, if any.
    async fn last_log_event(&self, t: &Target) -> anyhow::Result<Option<i64>>;
    /// Append `(ms, message)` events to a stream.
    async fn append_log_events(&self, t: &Target, events: &[(i64, String)]) -> anyhow::Result<()>;
    /// Addresses of removed local instances that nothing runs on any more:
    /// the agent takes them off the machine, then calls `address_released`.
    async fn releasable_addresses(&self) -> anyhow::Result<Vec<String>> {
        Ok(vec![])
    }
    async fn address_released(&self, _address: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The control plane of the agent inside `berth server`: the store.
/// A task pulls only from its own account's registry (cross-account
/// pulls wait for repository policies to be enforced).
fn own_account(e: &crate::ecr::names::EcrImage, account: &str) -> anyhow::Result<()> {
    if e.account != account {
        anyhow::bail!(
            "access denied: the task's account {account} may not pull from the registry of account {}",
            e.account
        );
    }
    Ok(())
}

/// An image as it is pulled from Berth's registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPull {
    /// The image's name in Berth's registry (`127.0.0.1:4566/app:v1`).
    pub image: String,
    pub auth: crate::runtime::PullAuth,
}

pub struct LocalControlPlane {
    pub store: Arc<Store>,
    pub logs: Arc<Logs>,
    /// The registry ECR image names resolve to.
    pub registry: Option<Arc<crate::ecr::Ecr>>,
    /// Woken after each save (the service scheduler watches tasks).
    pub observed: Option<Arc<crate::events::Wake>>,
    /// Where container secrets are read.
    pub secrets: Option<SecretStores>,
}

/// Parameter Store and Secrets Manager, as the server's agent reads them.
#[derive(Clone)]
pub struct SecretStores {
    pub ssm: Arc<crate::ssm::Ssm>,
    pub asm: Arc<crate::secretsmanager::SecretsManager>,
}

#[async_trait]
impl ControlPlane for LocalControlPlane {
    async fn registry_pull(
        &self,
        image: &str,
        account: &str,
    ) -> anyhow::Result<Option<RegistryPull>> {
        let (Some(ecr), Some(e)) = (&self.registry, crate::ecr::names::EcrImage::parse(image))
        else {
            return Ok(None);
        };
        own_account(&e, account)?;
        Ok(Some(RegistryPull {
            image: e.at(&ecr.host),
            auth: crate::runtime::PullAuth {
                server: ecr.host.clone(),
                username: "AWS".into(),
                password: crate::ecr::auth::password_for(ecr, &e.account, &e.region),
            },
        }))
    }

    async fn resolve_secrets(
        &self,
        account: &str,
        region: &str,
        value_froms: &[String],
    ) -> Result<Vec<String>, String> {
        use super::secrets::{resolve_all, Lookup};
        if value_froms.is_empty() {
            return Ok(Vec::new());
        }
        let Some(stores) = self.secrets.clone() else {
            return Err(format!(
                "{}: no parameter store or secrets manager is configured",
                super::secrets::FAILED
            ));
        };
        let lookup = |r: Result<String, crate::error::ApiError>, missing: &[&str]| match r {
            Ok(v) => Lookup::Found(v),
            Err(e) if missing.contains(&e.code.as_str()) => Lookup::Missing,
            Err(e) => Lookup::Failed(e),
        };
        let (account, region) = (account.to_string(), region.to_string());
        let now_ms = chrono::Utc::now().timestamp_millis();
        let value_froms = value_froms.to_vec();
        tokio::task::spawn_blocking(move || {
            resolve_all(
                &value_froms,
                |vf| {
                    lookup(
                        stores.ssm.resolve_value_from(&account, &region, vf),
                        &["ParameterNotFound", "ParameterVersionNotFound"],
                    )
                },
                |vf| {
                    lookup(
                        stores.asm.resolve_value_from(&account, &region, vf, now_ms),
                        &[],
                    )
                },
            )
        })
        .await
        .map_err(|e| format!("{}: {e}", super::secrets::FAILED))?
    }

    async fn live_tasks(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.store.read(tasks::live_arns)?)
    }

    async fn load_task(&self, arn: &str) -> anyhow::Result<Option<TaskRow>> {
        Ok(self.store.read(|c| tasks::load(c, arn))?)
    }

    async fn load_task_definition(
        &self,
        _task_arn: &str,
        td_arn: &str,
    ) -> anyhow::Result<Option<TaskDefinition>> {
        Ok(self
            .store
            .read(|c| taskdefs::find_by_arn(c, td_arn))?
            .map(|td| td.doc))
    }

    async fn save_task(&self, task: &TaskRow) -> anyhow::Result<()> {
        self.store.write(|tx| tasks::save_observed(tx, task))?;
        if let Some(w) = &self.observed {
            w.notify();
        }
        Ok(())
    }

    async fn request_stop(
        &self,
        arn: &str,
        code: TaskStopCode,
        reason: &str,
    ) -> anyhow::Result<()> {
        self.store
            .write(|tx| tasks::request_stop(tx, arn, code, reason))?;
        if let Some(w) = &self.observed {
            w.notify();
        }
        Ok(())
    }

    async fn prepare_log_stream(&self, t: &Target) -> Result<(), String> {
        let fmt = |e: crate::error::ApiError| format!("{}: {}", e.code, e.message);
        if t.create_group {
            self.logs
                .ensure_group(&t.account, &t.region, &t.group)
                .map_err(fmt)?;
        }
        self.logs
            .ensure_stream(&t.account, &t.region, &t.group, &t.stream)
            .map_err(fmt)
    }

    async fn last_log_event(&self, t: &Target) -> anyhow::Result<Option<i64>> {
        Ok(self
            .logs
            .last_event(&t.account, &t.region, &t.group, &t.stream)?)
    }

    async fn append_log_events(&self, t: &Target, events: &[(i64, String)]) -> anyhow::Result<()> {
        self.logs
            .append(&t.account, &t.region, &t.group, &t.stream, events)?;
        Ok(())
    }

    async fn releasable_addresses(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .store
            .read(crate::ecs::instances::releasable_addresses)?)
    }

    async fn address_released(&self, address: &str) -> anyhow::Result<()> {
        Ok(self
            .store
            .write(|tx| crate::ecs::instances::forget_address(tx, address))?)
    }
}

/// The target prefix of Berth's own API.
pub const BERTH_TARGET: &str = "Berth_20261123";

/// The control plane of `berth agent`: a server, over the API, for the
/// tasks placed on one container instance.
pub struct RemoteControlPlane {
    pub client: Client,
    pub container_instance_arn: String,
}

impl RemoteControlPlane {
    async fn call(&self, op: &str, mut body: Value) -> Result<Value, ClientError> {
        body["containerInstanceArn"] = json!(self.container_instance_arn);
        self.client
            .call(&format!("{BERTH_TARGET}.{op}"), &body)
            .await
    }

    fn log_body(t: &Target) -> Value {
        json!({"region": t.region, "logGroupName": t.group, "logStreamName": t.stream})
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// An enum member `k` of `v`, as the model spells it.
fn member<T: serde::de::DeserializeOwned>(v: &Value, k: &str) -> anyhow::Result<Option<T>> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => Ok(Some(serde_json::from_value(x.clone())?)),
    }
}

/// A task row from its `AgentGetTask` shape.
pub fn task_from_wire(v: &Value) -> anyhow::Result<TaskRow> {
    let doc = serde_json::from_str(&text(v, "document").unwrap_or_default())?;
    let runtime: TaskRuntime = match text(v, "runtime") {
        Some(r) => serde_json::from_str(&r)?,
        None => TaskRuntime::default(),
    };
    Ok(TaskRow {
        arn: text(v, "taskArn").unwrap_or_default(),
        cluster_arn: text(v, "clusterArn").unwrap_or_default(),
        desired_status: member(v, "desiredStatus")?.unwrap_or(TaskStatus::Running),
        stop_code: member(v, "stopCode")?,
        stopped_reason: text(v, "stoppedReason"),
        doc,
        runtime,
    })
}

/// A task row in its `AgentGetTask` shape.
pub fn task_to_wire(t: &TaskRow) -> Value {
    let mut v = json!({
        "taskArn": t.arn,
        "clusterArn": t.cluster_arn,
        "desiredStatus": t.desired_status,
        "document": serde_json::to_string(&t.doc).expect("serialises"),
        "runtime": serde_json::to_string(&t.runtime).expect("serialises"),
    });
    if let Some(c) = &t.stop_code {
        v["stopCode"] = json!(c);
    }
    if let Some(r) = &t.stopped_reason {
        v["stoppedReason"] = json!(r);
    }
    v
}

#[async_trait]
impl ControlPlane for RemoteControlPlane {
    /// The registry is the server's: an ECR token from its API, the image
    /// at the server's address.
    async fn registry_pull(
        &self,
        image: &str,
        account: &str,
    ) -> anyhow::Result<Option<RegistryPull>> {
        let Some(e) = crate::ecr::names::EcrImage::parse(image) else {
            return Ok(None);
        };
        own_account(&e, account)?;
        if e.region != self.client.region() {
            anyhow::bail!(
                "the image's registry is in {}, and this agent's credentials are for {}",
                e.region,
                self.client.region()
            );
        }
        let out = self
            .client
            .call_service(
                "ecr",
                "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
                &json!({}),
            )
            .await?;
        let token = out["authorizationData"][0]["authorizationToken"]
            .as_str()
            .unwrap_or_default();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(token)?;
        let decoded = String::from_utf8(decoded)?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("the registry token is not user:password"))?;
        let host = crate::ecr::registry_host(self.client.endpoint().trim_end_matches('/'));
        Ok(Some(RegistryPull {
            image: e.at(&host),
            auth: crate::runtime::PullAuth {
                server: host,
                username: username.into(),
                password: password.into(),
            },
        }))
    }

    /// Secrets are read from the server's Parameter Store
    /// (`GetParameters`) and Secrets Manager (`GetSecretValue`), as the
    /// ECS agent reads them, with this agent's credentials.
    async fn resolve_secrets(
        &self,
        account: &str,
        region: &str,
        value_froms: &[String],
    ) -> Result<Vec<String>, String> {
        use super::secrets::{is_secrets_manager, report, Lookup};
        let failed = |e: ClientError| match e {
            ClientError::Api { code, message } => {
                Lookup::Failed(crate::error::ApiError::new(code, message))
            }
            other => Lookup::Failed(crate::error::ApiError::new(
                "RequestError",
                other.to_string(),
            )),
        };
        // The server answers for the account of this agent's key, which
        // is the account of every task placed on its instance.
        let _ = account;
        if region != self.client.region() {
            return Err(format!(
                "{}: the task's region {region} is not this agent's ({})",
                super::secrets::FAILED,
                self.client.region()
            ));
        }
        let mut lookups = Vec::with_capacity(value_froms.len());
        for vf in value_froms {
            let lookup = if is_secrets_manager(vf) {
                match crate::secretsmanager::values::parse_value_from(vf) {
                    Err(e) => Lookup::Failed(e),
                    Ok(r) => {
                        let mut body = json!({"SecretId": r.secret_id});
                        if let Some(s) = &r.version_stage {
                            body["VersionStage"] = json!(s);
                        }
                        if let Some(v) = &r.version_id {
                            body["VersionId"] = json!(v);
                        }
                        match self
                            .client
                            .call_service("secretsmanager", "secretsmanager.GetSecretValue", &body)
                            .await
                        {
                            Err(e) => failed(e),
                            Ok(out) => match (out["SecretString"].as_str(), &r.json_key) {
                                (None, _) => Lookup::Failed(crate::error::ApiError::new(
                                    crate::secretsmanager::VALUE_FROM_ERROR,
                                    format!("secret {} holds no SecretString; ECS injects SecretString values only", r.secret_id),
                                )),
                                (Some(text), None) => Lookup::Found(text.to_string()),
                                (Some(text), Some(key)) => {
                                    match crate::secretsmanager::values::json_field(text, key) {
                                        Ok(v) => Lookup::Found(v),
                                        Err(e) => Lookup::Failed(e),
                                    }
                                }
                            },
                        }
                    }
                }
            } else {
                let body = json!({"Names": [vf], "WithDecryption": true});
                match self
                    .client
                    .call_service("ssm", "AmazonSSM.GetParameters", &body)
                    .await
                {
                    Err(e) => failed(e),
                    Ok(out) => match out["Parameters"][0]["Value"].as_str() {
                        Some(v) => Lookup::Found(v.to_string()),
                        None => Lookup::Missing,
                    },
                }
            };
            lookups.push(lookup);
        }
        report(value_froms, lookups)
    }

    async fn live_tasks(&self) -> anyhow::Result<Vec<String>> {
        let out = self.call("AgentHeartbeat", json!({})).await?;
        Ok(out["taskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect())
    }

    async fn load_task(&self, arn: &str) -> anyhow::Result<Option<TaskRow>> {
        let out = self.call("AgentGetTask", json!({"taskArn": arn})).await?;
        match out.get("task") {
            Some(t) => Ok(Some(task_from_wire(t)?)),
            None => Ok(None),
        }
    }

    async fn load_task_definition(
        &self,
        task_arn: &str,
        _td_arn: &str,
    ) -> anyhow::Result<Option<TaskDefinition>> {
        let out = self
            .call(
                "AgentGetTask",
                json!({"taskArn": task_arn, "includeTaskDefinition": true}),
            )
            .await?;
        match text(&out, "taskDefinition") {
            Some(td) => Ok(Some(serde_json::from_str(&td)?)),
            None => Ok(None),
        }
    }

    async fn save_task(&self, task: &TaskRow) -> anyhow::Result<()> {
        let w = task_to_wire(task);
        self.call(
            "AgentSaveTask",
            json!({"taskArn": task.arn, "document": w["document"], "runtime": w["runtime"]}),
        )
        .await?;
        Ok(())
    }

    async fn request_stop(
        &self,
        arn: &str,
        code: TaskStopCode,
        reason: &str,
    ) -> anyhow::Result<()> {
        self.call(
            "AgentRequestStop",
            json!({"taskArn": arn, "stopCode": code, "reason": reason}),
        )
        .await?;
        Ok(())
    }

    async fn prepare_log_stream(&self, t: &Target) -> Result<(), String> {
        let mut body = Self::log_body(t);
        body["createGroup"] = json!(t.create_group);
        match self.call("AgentPrepareLogStream", body).await {
            Ok(_) => Ok(()),
            Err(ClientError::Api { code, message }) => Err(format!("{code}: {message}")),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn last_log_event(&self, t: &Target) -> anyhow::Result<Option<i64>> {
        let out = self.call("AgentGetLastLogEvent", Self::log_body(t)).await?;
        Ok(out.get("timestamp").and_then(Value::as_i64))
    }

    async fn append_log_events(&self, t: &Target, events: &[(i64, String)]) -> anyhow::Result<()> {
        let mut body = Self::log_body(t);
        body["events"] = events
            .iter()
            .map(|(ts, m)| json!({"timestamp": ts, "message": m}))
            .collect();
        self.call("AgentAppendLogEvents", body).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_rows_round_trip_through_the_wire() {
        let mut runtime = TaskRuntime {
            pause_id: Some("p1".into()),
            host_ip: Some("10.0.0.1".into()),
            ..Default::default()
        };
        runtime.containers.insert("web".into(), "c1".into());
        let t = TaskRow {
            arn: "arn:aws:ecs:us-east-1:000000000000:task/c/abc".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            desired_status: TaskStatus::Stopped,
            stop_code: Some(TaskStopCode::UserInitiated),
            stopped_reason: Some("done".into()),
            doc: serde_json::from_value(
                json!({"lastStatus": "RUNNING", "containers": [{"name": "web"}]}),
            )
            .unwrap(),
            runtime,
        };
        let back = task_from_wire(&task_to_wire(&t)).unwrap();
        assert_eq!(back.render(), t.render());
        assert_eq!(back.runtime.containers, t.runtime.containers);
        assert_eq!(back.runtime.host_ip, t.runtime.host_ip);
        let bare = json!({"taskArn": "a", "document": "{}", "desiredStatus": "RUNNING"});
        let row = task_from_wire(&bare).unwrap();
        assert_eq!((row.stop_code, row.runtime.pause_id), (None, None));
        assert!(task_from_wire(&json!({"document": "not json"})).is_err());
    }
}
