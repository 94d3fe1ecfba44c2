//! The placement index of each cluster, kept across RunTask calls.
//!
//! Building a cluster's placement view reads every instance and the
//! reservations of its tasks (milliseconds at thousands of instances);
//! the [`Placer`] built from it answers each further placement from its
//! indexes in microseconds and applies what it placed. So RunTask takes the
//! cluster's placer out of this cache inside its write transaction, places
//! with it, and puts it back after the transaction commits, tagged with the
//! cluster's placement version as of that commit.
//!
//! The version (`placement_versions`, migration 9) is bumped by triggers on
//! every write that changes what placement sees: instances registered,
//! changed or removed, attributes, tasks placed, moved or stopped — whatever
//! code made the write. A kept placer is used only when its version is the
//! store's, so it can never disagree with the store: any other write makes
//! the next RunTask build afresh. What time alone changes (a remote agent
//! falling silent) bounds how long a placer stays valid; an agent heard
//! from again after it was counted disconnected bumps the version.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension};

use super::instances;
use crate::error::ApiResult;
use crate::placement::Placer;

/// A cluster's placer, current as of `version`.
pub struct Checkout {
    pub placer: Placer<'static>,
    valid_until_ms: i64,
}

struct Kept {
    version: i64,
    checkout: Checkout,
}

#[derive(Default)]
pub struct Placements {
    clusters: Mutex<HashMap<String, Kept>>,
}

/// The store's placement version of a cluster.
pub fn version(conn: &Connection, cluster_arn: &str) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached("SELECT version FROM placement_versions WHERE cluster_arn = ?1")?
        .query_row([cluster_arn], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Mark a cluster's placement view changed (for what no trigger sees).
pub fn bump(conn: &Connection, cluster_arn: &str) -> ApiResult<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO placement_versions VALUES (?1, 0)")?
        .execute([cluster_arn])?;
    conn.prepare_cached(
        "UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = ?1",
    )?
    .execute([cluster_arn])?;
    Ok(())
}

impl Placements {
    /// The cluster's placer as the store has it now, inside the caller's
    /// write transaction: the kept one when it is current, else one built
    /// from a fresh snapshot. Give it back with [`Placements::put_back`]
    /// once the transaction has committed.
    pub fn take(
        &self,
        conn: &Connection,
        cluster_arn: &str,
        at: instances::Liveness,
    ) -> ApiResult<Checkout> {
        let now_ms = at.now_ms;
        let current = version(conn, cluster_arn)?;
        let kept = self.clusters.lock().unwrap().remove(cluster_arn);
        if let Some(k) = kept {
            if k.version == current && now_ms < k.checkout.valid_until_ms {
                return Ok(k.checkout);
            }
        }
        let snapshot = instances::snapshot(conn, cluster_arn, at)?;
        // A remote agent counted connected stays so until its timeout from
        // when it was last heard; the placer is valid until the first.
        let valid_until_ms = snapshot
            .iter()
            .filter(|(row, view)| view.agent_connected && row.agent != instances::LOCAL_AGENT)
            .filter_map(|(row, _)| row.last_seen)
            .map(|seen| seen + at.timeout_ms)
            .min()
            .unwrap_or(i64::MAX);
        Ok(Checkout {
            placer: Placer::from_owned(snapshot.into_iter().map(|(_, v)| v).collect()),
            valid_until_ms,
        })
    }

    /// Keep a placer taken in a transaction that has committed with the
    /// cluster at `version`, unless a newer one is kept already.
    pub fn put_back(&self, cluster_arn: &str, version: i64, checkout: Checkout) {
        let mut clusters = self.clusters.lock().unwrap();
        if clusters
            .get(cluster_arn)
            .is_some_and(|k| k.version > version)
        {
            return;
        }
        clusters.insert(cluster_arn.to_string(), Kept { version, checkout });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use crate::context::Ctx;
    use crate::store::Store;
    use crate::wire::{App, Registry};

    struct World {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        ecs: Arc<crate::ecs::Ecs>,
        app: App,
    }

    impl World {
        fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open_in(dir.path()).unwrap());
            let services = crate::services::Services::new(
                store.clone(),
                Default::default(),
                Arc::new(crate::clock::SystemClock),
            )
            .unwrap();
            let ecs = services.ecs.clone();
            let mut r = Registry::default();
            r.add(ecs.clone().service());
            World {
                _dir: dir,
                store,
                ecs,
                app: App::in_process(r),
            }
        }

        fn call(&self, op: &str, input: Value) -> Value {
            let ctx = Ctx::for_tests(chrono::Utc::now());
            self.app
                .call_named("ECS", &ctx, op, input)
                .unwrap_or_else(|e| panic!("{op}: {e}"))
        }

        fn register(&self, i: usize) -> String {
            let doc = json!({"instanceId": format!("i-{i:017x}"), "instanceType": "m5.large",
                "availabilityZone": "us-east-1a", "region": "us-east-1"});
            self.call(
                "RegisterContainerInstance",
                json!({"cluster": "c",
                "instanceIdentityDocument": doc.to_string(),
                "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                                   {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]}),
            )["containerInstance"]["containerInstanceArn"]
                .as_str()
                .unwrap()
                .to_string()
        }

        /// Tasks placed by one RunTask of `count` 256-unit tasks, by instance.
        fn run(&self, count: usize) -> Vec<String> {
            let out = self.call(
                "RunTask",
                json!({"cluster": "c", "taskDefinition": "t",
                "count": count, "launchType": "EC2"}),
            );
            out["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
                .collect()
        }

        /// What the store says each instance has reserved (live tasks).
        fn reserved_cpu(&self, instance: &str) -> i64 {
            self.store
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT coalesce(sum(json_extract(reserved, '$.cpu')), 0) FROM tasks
                         WHERE container_instance_arn = ?1 AND last_status != 'STOPPED'",
                        [instance],
                        |r| r.get(0),
                    )?)
                })
                .unwrap()
        }
    }

    #[test]
    fn the_kept_index_follows_every_write_to_the_cluster() {
        let w = World::new();
        w.call("CreateCluster", json!({"clusterName": "c"}));
        w.call(
            "RegisterTaskDefinition",
            json!({"family": "t", "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [{"name": "m", "image": "x", "cpu": 256, "memory": 128}]}),
        );
        let a = w.register(0);
        let b = w.register(1);
        // 4 tasks fit on each instance; the kept index never overcommits.
        let mut placed = w.run(3);
        placed.extend(w.run(3));
        placed.extend(w.run(2));
        assert_eq!(placed.len(), 8);
        assert_eq!((w.reserved_cpu(&a), w.reserved_cpu(&b)), (1024, 1024));
        let full = w.call(
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "t", "count": 1,
            "launchType": "EC2"}),
        );
        assert_eq!(full["tasks"], json!([]), "full: {full}");
        assert!(w
            .ecs
            .placements
            .clusters
            .lock()
            .unwrap()
            .contains_key("arn:aws:ecs:us-east-1:000000000000:cluster/c"));
        // A write the RunTask path never makes (a task stopped by its agent)
        // frees capacity; the next RunTask sees it.
        w.store
            .write(|tx| {
                let arn: String = tx.query_row(
                    "SELECT arn FROM tasks WHERE container_instance_arn = ?1 LIMIT 1",
                    [&a],
                    |r| r.get(0),
                )?;
                let mut t = crate::ecs::tasks::load(tx, &arn)?.unwrap();
                t.doc.last_status = Some(crate::ecs::status::TaskStatus::Stopped);
                crate::ecs::tasks::save_observed(tx, &t)
            })
            .unwrap();
        assert_eq!(w.run(1), vec![a.clone()]);
        // An instance drained elsewhere takes no more tasks, and one that
        // joins takes them.
        w.call(
            "UpdateContainerInstancesState",
            json!({"cluster": "c",
            "containerInstances": [a.clone()], "status": "DRAINING"}),
        );
        let c = w.register(2);
        assert_eq!(w.run(4), vec![c.clone(); 4]);
        assert_eq!(w.reserved_cpu(&c), 1024);
    }

    #[test]
    fn a_refused_run_task_reserves_nothing() {
        let w = World::new();
        w.call("CreateCluster", json!({"clusterName": "c"}));
        w.call(
            "RegisterTaskDefinition",
            json!({"family": "t", "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [{"name": "m", "image": "x", "cpu": 256, "memory": 128}]}),
        );
        w.register(0);
        assert_eq!(w.run(1).len(), 1);
        let ctx = Ctx::for_tests(chrono::Utc::now());
        // Bad tags fail the call before its transaction commits.
        let e = w.app.call_named(
            "ECS",
            &ctx,
            "RunTask",
            json!({"cluster": "c",
            "taskDefinition": "t", "launchType": "EC2", "tags": [{"key": "aws:x", "value": "v"}]}),
        );
        assert!(e.is_err());
        assert_eq!(w.run(3).len(), 3, "the failed call reserved nothing");
        let full = w.call(
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "t", "count": 1,
            "launchType": "EC2"}),
        );
        assert_eq!(full["tasks"], json!([]));
    }
}
