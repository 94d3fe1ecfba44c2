//! The persistent state: one SQLite database in WAL mode under the data dir.
//!
//! Writes go through one connection, serialised, each in an IMMEDIATE
//! transaction that commits before the API answers; with `synchronous=FULL`
//! an acknowledged write survives a crash of the process or the machine.
//! Reads use a small pool of read-only connections, which WAL lets run
//! alongside the writer. Nothing is cached in memory: every request reads the
//! database.
//!
//! The schema is versioned by `PRAGMA user_version`; `MIGRATIONS[i]` takes the
//! database from version `i` to `i + 1`, in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{ApiError, ApiResult};

/// Schema migrations, in order. Append; never edit a released one.
pub const MIGRATIONS: &[&str] = &[
    // 1: clusters, task definitions, tags.
    r#"
    CREATE TABLE clusters (
        arn         TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        doc         TEXT NOT NULL,
        UNIQUE (account, region, name)
    );
    CREATE TABLE task_definitions (
        arn             TEXT PRIMARY KEY,
        account         TEXT NOT NULL,
        region          TEXT NOT NULL,
        family          TEXT NOT NULL,
        revision        INTEGER NOT NULL,
        status          TEXT NOT NULL,
        registered_at   INTEGER NOT NULL,
        doc             TEXT NOT NULL,
        UNIQUE (account, region, family, revision)
    );
    CREATE INDEX task_definitions_by_status ON task_definitions (account, region, status, family, revision);
    CREATE TABLE tags (
        resource_arn TEXT NOT NULL,
        key          TEXT NOT NULL,
        value        TEXT NOT NULL,
        PRIMARY KEY (resource_arn, key)
    );
    "#,
    // 2: tasks.
    r#"
    CREATE TABLE tasks (
        arn                 TEXT PRIMARY KEY,
        id                  TEXT NOT NULL UNIQUE,
        account             TEXT NOT NULL,
        region              TEXT NOT NULL,
        cluster_arn         TEXT NOT NULL,
        family              TEXT NOT NULL,
        task_definition_arn TEXT NOT NULL,
        launch_type         TEXT NOT NULL,
        started_by          TEXT,
        task_group          TEXT,
        desired_status      TEXT NOT NULL,
        last_status         TEXT NOT NULL,
        stop_code           TEXT,
        stopped_reason      TEXT,
        created_at          INTEGER NOT NULL,
        doc                 TEXT NOT NULL,
        runtime             TEXT NOT NULL
    );
    CREATE INDEX tasks_by_cluster ON tasks (cluster_arn, desired_status, created_at, arn);
    CREATE INDEX tasks_live ON tasks (last_status, created_at);
    "#,
    // 3: CloudWatch Logs groups, streams and events.
    r#"
    CREATE TABLE log_groups (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        account             TEXT NOT NULL,
        region              TEXT NOT NULL,
        name                TEXT NOT NULL,
        created_at          INTEGER NOT NULL,
        retention_days      INTEGER,
        kms_key_id          TEXT,
        class               TEXT NOT NULL,
        deletion_protection INTEGER NOT NULL DEFAULT 0,
        stored_bytes        INTEGER NOT NULL DEFAULT 0,
        tags                TEXT NOT NULL DEFAULT '{}',
        UNIQUE (account, region, name)
    );
    CREATE TABLE log_streams (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id        INTEGER NOT NULL,
        name            TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        first_event     INTEGER,
        last_event      INTEGER,
        last_ingestion  INTEGER,
        upload_seq      INTEGER NOT NULL DEFAULT 0,
        stored_bytes    INTEGER NOT NULL DEFAULT 0,
        UNIQUE (group_id, name)
    );
    CREATE TABLE log_events (
        id          INTEGER PRIMARY KEY,
        group_id    INTEGER NOT NULL,
        stream_id   INTEGER NOT NULL,
        timestamp   INTEGER NOT NULL,
        ingestion   INTEGER NOT NULL,
        message     TEXT NOT NULL
    );
    CREATE INDEX log_events_by_stream ON log_events (group_id, stream_id, timestamp, id);
    CREATE INDEX log_events_by_group ON log_events (group_id, timestamp, id);
    "#,
    // 4: facts about this installation (its owner id).
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 5: container instances, their attributes, and where each task runs
    // with what it reserves there.
    r#"
    CREATE TABLE container_instances (
        arn             TEXT PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        account         TEXT NOT NULL,
        region          TEXT NOT NULL,
        cluster_arn     TEXT NOT NULL,
        ec2_instance_id TEXT NOT NULL,
        status          TEXT NOT NULL,
        registered_at   INTEGER NOT NULL,
        agent           TEXT NOT NULL,
        last_seen       INTEGER,
        address         TEXT,
        doc             TEXT NOT NULL
    );
    CREATE INDEX container_instances_by_cluster
        ON container_instances (cluster_arn, status, registered_at, arn);
    CREATE TABLE attributes (
        cluster_arn TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id   TEXT NOT NULL,
        name        TEXT NOT NULL,
        value       TEXT,
        PRIMARY KEY (cluster_arn, target_id, name)
    );
    ALTER TABLE tasks ADD COLUMN container_instance_arn TEXT;
    ALTER TABLE tasks ADD COLUMN reserved TEXT;
    CREATE INDEX tasks_by_instance ON tasks (container_instance_arn, last_status);
    "#,
    // 6: metering: a task's usage, frozen when it stops; when an instance
    // was deregistered (its billing ends).
    r#"
    ALTER TABLE tasks ADD COLUMN usage TEXT;
    ALTER TABLE container_instances ADD COLUMN deregistered_at INTEGER;
    CREATE INDEX tasks_by_account_created ON tasks (account, region, created_at, arn);
    "#,
    // 7: EC2 launch templates and their versions (`data`: the
    // LaunchTemplateData as given, JSON).
    r#"
    CREATE TABLE launch_templates (
        id              TEXT PRIMARY KEY,
        account         TEXT NOT NULL,
        region          TEXT NOT NULL,
        name            TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        created_by      TEXT NOT NULL,
        default_version INTEGER NOT NULL,
        latest_version  INTEGER NOT NULL,
        tags            TEXT NOT NULL DEFAULT '[]',
        UNIQUE (account, region, name)
    );
    CREATE INDEX launch_templates_by_created ON launch_templates (account, region, created_at, id);
    CREATE TABLE launch_template_versions (
        template_id TEXT NOT NULL,
        version     INTEGER NOT NULL,
        description TEXT,
        created_at  INTEGER NOT NULL,
        created_by  TEXT NOT NULL,
        data        TEXT NOT NULL,
        PRIMARY KEY (template_id, version)
    );
    "#,
    // 8: EC2 Auto Scaling groups (`doc`: the group's configuration as
    // given), the EC2 instances Berth launches for them, their scaling
    // activities; ECS capacity providers; and the tasks waiting in
    // PROVISIONING for capacity (`request`: how to place them).
    r#"
    CREATE TABLE auto_scaling_groups (
        arn         TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        min_size    INTEGER NOT NULL,
        max_size    INTEGER NOT NULL,
        desired     INTEGER NOT NULL,
        doc         TEXT NOT NULL,
        warm_pool   TEXT,
        deleting    INTEGER NOT NULL DEFAULT 0,
        UNIQUE (account, region, name)
    );
    CREATE TABLE ec2_instances (
        id                      TEXT PRIMARY KEY,
        account                 TEXT NOT NULL,
        region                  TEXT NOT NULL,
        group_name              TEXT,
        instance_type           TEXT NOT NULL,
        az                      TEXT NOT NULL,
        market                  TEXT NOT NULL,
        lifecycle               TEXT NOT NULL,
        protected               INTEGER NOT NULL DEFAULT 0,
        launch_template         TEXT NOT NULL,
        ecs_config              TEXT NOT NULL,
        launched_at             INTEGER NOT NULL,
        ready_at                INTEGER NOT NULL,
        container_instance_arn  TEXT,
        interrupt_at            INTEGER,
        terminated_at           INTEGER,
        state_since             INTEGER NOT NULL DEFAULT 0,
        unregistered_billed_ms  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX ec2_instances_by_group ON ec2_instances (account, region, group_name, lifecycle);
    CREATE INDEX ec2_instances_by_container_instance ON ec2_instances (container_instance_arn);
    CREATE TABLE scaling_activities (
        id          TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        group_name  TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        status      TEXT NOT NULL,
        description TEXT NOT NULL,
        cause       TEXT NOT NULL,
        details     TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX scaling_activities_by_group ON scaling_activities (account, region, group_name, started_at);
    CREATE TABLE capacity_providers (
        arn         TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        group_arn   TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        doc         TEXT NOT NULL,
        UNIQUE (account, region, name)
    );
    CREATE TABLE pending_placements (
        task_arn          TEXT PRIMARY KEY,
        cluster_arn       TEXT NOT NULL,
        capacity_provider TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        request           TEXT NOT NULL
    );
    CREATE INDEX pending_placements_by_cluster ON pending_placements (cluster_arn, created_at);
    "#,
    // 9: each cluster's placement version: bumped, by triggers, by every
    // write that changes what placement sees of the cluster (instances,
    // their status, registration and attributes; tasks placed, moved or
    // stopped), so a placement index kept in memory knows when it is
    // stale, whatever code wrote.
    r#"
    CREATE TABLE placement_versions (
        cluster_arn TEXT PRIMARY KEY,
        version     INTEGER NOT NULL
    );
    CREATE TRIGGER placement_task_placed AFTER INSERT ON tasks
        WHEN NEW.container_instance_arn IS NOT NULL
    BEGIN
        INSERT OR IGNORE INTO placement_versions VALUES (NEW.cluster_arn, 0);
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = NEW.cluster_arn;
    END;
    CREATE TRIGGER placement_task_changed AFTER UPDATE OF container_instance_arn, reserved, last_status ON tasks
        WHEN (NEW.container_instance_arn IS NOT NULL OR OLD.container_instance_arn IS NOT NULL)
         AND (OLD.container_instance_arn IS NOT NEW.container_instance_arn
              OR OLD.reserved IS NOT NEW.reserved
              OR (NEW.last_status = 'STOPPED' AND OLD.last_status != 'STOPPED'))
    BEGIN
        INSERT OR IGNORE INTO placement_versions VALUES (NEW.cluster_arn, 0);
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = NEW.cluster_arn;
    END;
    CREATE TRIGGER placement_instance_added AFTER INSERT ON container_instances
    BEGIN
        INSERT OR IGNORE INTO placement_versions VALUES (NEW.cluster_arn, 0);
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = NEW.cluster_arn;
    END;
    CREATE TRIGGER placement_instance_changed AFTER UPDATE OF status, doc, cluster_arn, address ON container_instances
    BEGIN
        INSERT OR IGNORE INTO placement_versions VALUES (NEW.cluster_arn, 0);
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn IN (NEW.cluster_arn, OLD.cluster_arn);
    END;
    CREATE TRIGGER placement_instance_removed AFTER DELETE ON container_instances
    BEGIN
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = OLD.cluster_arn;
    END;
    CREATE TRIGGER placement_attribute_added AFTER INSERT ON attributes
    BEGIN
        INSERT OR IGNORE INTO placement_versions VALUES (NEW.cluster_arn, 0);
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = NEW.cluster_arn;
    END;
    CREATE TRIGGER placement_attribute_changed AFTER UPDATE ON attributes
    BEGIN
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn IN (NEW.cluster_arn, OLD.cluster_arn);
    END;
    CREATE TRIGGER placement_attribute_removed AFTER DELETE ON attributes
    BEGIN
        UPDATE placement_versions SET version = version + 1 WHERE cluster_arn = OLD.cluster_arn;
    END;
    -- What the server's own agent runs, found without reading every live
    -- task (most may run on instances whose agents are elsewhere).
    CREATE INDEX tasks_live_fargate ON tasks (created_at)
        WHERE launch_type = 'FARGATE' AND container_instance_arn IS NULL AND last_status != 'STOPPED';
    CREATE INDEX container_instances_local ON container_instances (arn) WHERE agent = 'local';
    "#,
    // 10: metering owns its frozen usage (moved out of `tasks.usage`), and
    // each task that stops gets the next stop sequence number, so the
    // metering controller finds those it has not yet frozen.
    r#"
    CREATE TABLE task_usage (
        task_arn TEXT PRIMARY KEY,
        usage    TEXT NOT NULL
    );
    INSERT INTO task_usage SELECT arn, usage FROM tasks WHERE usage IS NOT NULL;
    ALTER TABLE tasks DROP COLUMN usage;
    ALTER TABLE tasks ADD COLUMN stop_seq INTEGER;
    UPDATE tasks SET stop_seq = rowid WHERE last_status = 'STOPPED';
    CREATE INDEX tasks_by_stop_seq ON tasks (stop_seq) WHERE stop_seq IS NOT NULL;
    CREATE TRIGGER task_stop_seq AFTER UPDATE OF last_status ON tasks
        WHEN NEW.last_status = 'STOPPED' AND OLD.last_status != 'STOPPED'
    BEGIN
        UPDATE tasks SET stop_seq = (SELECT coalesce(max(stop_seq), 0) + 1 FROM tasks WHERE stop_seq IS NOT NULL)
         WHERE arn = NEW.arn;
    END;
    CREATE TABLE metering_state (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    "#,
    // 11: services, their deployments and events; tasks by service group
    // and by deployment, with their health and start time in columns; both
    // indexes cover what the scheduler reads of tasks every pass, so a
    // quiet pass never reads a task's document.
    r#"
    CREATE TABLE services (
        arn         TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        cluster_arn TEXT NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        steady      INTEGER NOT NULL DEFAULT 0,
        doc         TEXT NOT NULL
    );
    CREATE INDEX services_by_cluster ON services (cluster_arn, status, created_at);
    CREATE TABLE service_deployments (
        id              TEXT PRIMARY KEY,
        service_arn     TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        status          TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        doc             TEXT NOT NULL,
        outcome         TEXT,
        rolled_back_to  TEXT,
        UNIQUE (service_arn, seq)
    );
    CREATE INDEX service_deployments_current ON service_deployments (status, service_arn, seq);
    CREATE TABLE service_events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        service_arn TEXT NOT NULL,
        id          TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        message     TEXT NOT NULL
    );
    CREATE INDEX service_events_by_service ON service_events (service_arn, seq);
    ALTER TABLE tasks ADD COLUMN health_status TEXT;
    ALTER TABLE tasks ADD COLUMN started_at REAL;
    UPDATE tasks SET health_status = json_extract(doc, '$.healthStatus'),
                     started_at = json_extract(doc, '$.startedAt');
    CREATE INDEX tasks_by_group ON tasks (cluster_arn, task_group, last_status, desired_status,
        arn, started_by, health_status, started_at, created_at, task_definition_arn,
        container_instance_arn);
    CREATE INDEX tasks_by_started_by ON tasks (started_by, last_status, stop_code, stopped_reason,
        created_at);
    "#,
    // 12: account settings, task protection, task sets.
    r#"
    CREATE TABLE account_settings (
        region        TEXT NOT NULL,
        principal_arn TEXT NOT NULL,
        name          TEXT NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (region, principal_arn, name)
    );
    CREATE TABLE task_protection (
        task_arn    TEXT PRIMARY KEY,
        cluster_arn TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE TABLE task_sets (
        arn         TEXT PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        service_arn TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        doc         TEXT NOT NULL
    );
    CREATE INDEX task_sets_by_service ON task_sets (service_arn, created_at);
    "#,
    // 13: the circuit breaker counts by whether a deployment's tasks ever
    // ran, still from the covering index.
    r#"
    DROP INDEX tasks_by_started_by;
    CREATE INDEX tasks_by_started_by ON tasks (started_by, last_status, stop_code, stopped_reason,
        created_at, started_at);
    "#,
    // 14: Elastic Load Balancing: load balancers, target groups, targets,
    // listeners, rules, tags, per-minute target group metrics; and the
    // targets of ECS services' tasks.
    r#"
    CREATE TABLE elb_load_balancers (
        arn        TEXT PRIMARY KEY,
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        name       TEXT NOT NULL,
        address    TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        doc        TEXT NOT NULL,
        attributes TEXT NOT NULL,
        UNIQUE (account, region, name)
    );
    CREATE TABLE elb_target_groups (
        arn        TEXT PRIMARY KEY,
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        name       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        doc        TEXT NOT NULL,
        attributes TEXT NOT NULL,
        UNIQUE (account, region, name)
    );
    CREATE TABLE elb_listeners (
        arn               TEXT PRIMARY KEY,
        load_balancer_arn TEXT NOT NULL,
        port              INTEGER NOT NULL,
        created_at        INTEGER NOT NULL,
        doc               TEXT NOT NULL,
        UNIQUE (load_balancer_arn, port)
    );
    CREATE TABLE elb_rules (
        arn          TEXT PRIMARY KEY,
        listener_arn TEXT NOT NULL,
        is_default   INTEGER NOT NULL,
        priority     INTEGER NOT NULL,
        -- The target groups its actions forward to, each between spaces.
        target_groups TEXT NOT NULL,
        doc          TEXT NOT NULL,
        UNIQUE (listener_arn, priority)
    );
    CREATE TABLE elb_targets (
        target_group_arn  TEXT NOT NULL,
        id                TEXT NOT NULL,
        port              INTEGER NOT NULL,
        availability_zone TEXT,
        registered_at     INTEGER NOT NULL,
        state             TEXT NOT NULL,
        reason            TEXT,
        description       TEXT,
        healthy_since     INTEGER,
        draining_until    INTEGER,
        PRIMARY KEY (target_group_arn, id, port)
    );
    CREATE TABLE elb_tags (
        arn   TEXT NOT NULL,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (arn, key)
    );
    CREATE TABLE service_targets (
        task_arn         TEXT NOT NULL,
        service_arn      TEXT NOT NULL,
        target_group_arn TEXT NOT NULL,
        target_id        TEXT NOT NULL,
        port             INTEGER NOT NULL,
        state            TEXT NOT NULL,
        until_ms         INTEGER,
        stop_code        TEXT,
        stop_reason      TEXT,
        PRIMARY KEY (task_arn, target_group_arn)
    );
    CREATE INDEX service_targets_by_service ON service_targets (service_arn, task_arn);
    CREATE TABLE elb_metrics (
        target_group_arn TEXT NOT NULL,
        minute           INTEGER NOT NULL,
        requests         INTEGER NOT NULL,
        http_2xx         INTEGER NOT NULL,
        http_3xx         INTEGER NOT NULL,
        http_4xx         INTEGER NOT NULL,
        http_5xx         INTEGER NOT NULL,
        elb_5xx          INTEGER NOT NULL,
        response_ms_sum  INTEGER NOT NULL,
        responses_timed  INTEGER NOT NULL,
        healthy_hosts    INTEGER NOT NULL,
        PRIMARY KEY (target_group_arn, minute)
    );
    "#,
    // 15: where a blue/green, linear or canary deployment stands (its
    // target groups, lifecycle stage and share of production traffic).
    r#"
    ALTER TABLE service_deployments ADD COLUMN traffic TEXT;
    "#,
    // 16: the image registry (ECR): repositories, their images (a
    // manifest each, by digest), tags, the blobs each repository holds,
    // uploads in progress, resource tags, lifecycle previews. Blob
    // contents live in files under the data dir (`registry/`).
    r#"
    CREATE TABLE ecr_repositories (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        account           TEXT NOT NULL,
        region            TEXT NOT NULL,
        name              TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        tag_mutability    TEXT NOT NULL,
        tag_exclusions    TEXT NOT NULL,
        scan_on_push      INTEGER NOT NULL,
        encryption        TEXT NOT NULL,
        policy            TEXT,
        lifecycle_policy  TEXT,
        lifecycle_updated INTEGER,
        UNIQUE (account, region, name)
    );
    CREATE TABLE ecr_images (
        repository_id       INTEGER NOT NULL REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        digest              TEXT NOT NULL,
        media_type          TEXT NOT NULL,
        artifact_media_type TEXT,
        manifest            BLOB NOT NULL,
        size                INTEGER NOT NULL,
        pushed_at           INTEGER NOT NULL,
        last_pull           INTEGER,
        PRIMARY KEY (repository_id, digest)
    );
    CREATE TABLE ecr_image_tags (
        repository_id INTEGER NOT NULL REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        tag           TEXT NOT NULL,
        digest        TEXT NOT NULL,
        PRIMARY KEY (repository_id, tag)
    );
    CREATE INDEX ecr_image_tags_by_digest ON ecr_image_tags (repository_id, digest);
    CREATE TABLE ecr_image_refs (
        repository_id INTEGER NOT NULL REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        image_digest  TEXT NOT NULL,
        ref_digest    TEXT NOT NULL,
        PRIMARY KEY (repository_id, image_digest, ref_digest)
    );
    CREATE INDEX ecr_image_refs_by_ref ON ecr_image_refs (repository_id, ref_digest);
    CREATE TABLE ecr_layers (
        repository_id INTEGER NOT NULL REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        digest        TEXT NOT NULL,
        size          INTEGER NOT NULL,
        linked_at     INTEGER NOT NULL,
        PRIMARY KEY (repository_id, digest)
    );
    CREATE INDEX ecr_layers_by_digest ON ecr_layers (digest);
    CREATE TABLE ecr_uploads (
        id            TEXT PRIMARY KEY,
        repository_id INTEGER NOT NULL REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        started_at    INTEGER NOT NULL
    );
    CREATE TABLE ecr_resource_tags (
        repository_id INTEGER NOT NULL REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        key           TEXT NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (repository_id, key)
    );
    CREATE TABLE ecr_lifecycle_previews (
        repository_id INTEGER PRIMARY KEY REFERENCES ecr_repositories (id) ON DELETE CASCADE,
        policy        TEXT NOT NULL,
        status        TEXT NOT NULL,
        result        TEXT,
        started_at    INTEGER NOT NULL
    );
    "#,
    // 17: keys and secrets. KMS keys (their material sealed under the
    // master key kept outside the database) and aliases; SSM parameters,
    // every version kept (a SecureString's value sealed by KMS); Secrets
    // Manager's secrets and their versions (values sealed by KMS).
    r#"
    CREATE TABLE kms_keys (
        key_id      TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        description TEXT NOT NULL,
        key_usage   TEXT NOT NULL,
        key_spec    TEXT NOT NULL,
        manager     TEXT NOT NULL,
        state       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        deletion_at INTEGER,
        material    BLOB NOT NULL,
        tags        TEXT NOT NULL
    );
    CREATE INDEX kms_keys_by_account ON kms_keys (account, region);
    CREATE TABLE kms_aliases (
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        name       TEXT NOT NULL,
        key_id     TEXT NOT NULL REFERENCES kms_keys (key_id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ssm_parameters (
        account TEXT NOT NULL,
        region  TEXT NOT NULL,
        name    TEXT NOT NULL,
        version INTEGER NOT NULL,
        tags    TEXT NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ssm_parameter_versions (
        account         TEXT NOT NULL,
        region          TEXT NOT NULL,
        name            TEXT NOT NULL,
        version         INTEGER NOT NULL,
        type            TEXT NOT NULL,
        value           TEXT,
        sealed          BLOB,
        key_id          TEXT,
        description     TEXT,
        allowed_pattern TEXT,
        data_type       TEXT NOT NULL,
        tier            TEXT NOT NULL,
        labels          TEXT NOT NULL,
        modified_at     INTEGER NOT NULL,
        modified_by     TEXT NOT NULL,
        PRIMARY KEY (account, region, name, version)
    );
    CREATE TABLE sm_secrets (
        arn         TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        description TEXT,
        kms_key_id  TEXT,
        created_at  INTEGER NOT NULL,
        changed_at  INTEGER NOT NULL,
        accessed_at INTEGER,
        deleted_at  INTEGER,
        tags        TEXT NOT NULL,
        policy      TEXT,
        UNIQUE (account, region, name)
    );
    CREATE TABLE sm_secret_versions (
        arn        TEXT NOT NULL REFERENCES sm_secrets (arn) ON DELETE CASCADE,
        version_id TEXT NOT NULL,
        stages     TEXT NOT NULL,
        kind       TEXT NOT NULL,
        sealed     BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (arn, version_id)
    );
    "#,
    // 18: identity. IAM users, roles and groups (one table, by kind),
    // their inline policies and attached managed policies, group
    // membership; customer managed policies and their versions; instance
    // profiles; access keys and STS session credentials, their secrets
    // sealed under the master key.
    r#"
    CREATE TABLE iam_entities (
        account     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL COLLATE NOCASE,
        id          TEXT NOT NULL UNIQUE,
        path        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        description TEXT,
        trust       TEXT,
        max_session INTEGER,
        boundary    TEXT,
        tags        TEXT NOT NULL,
        PRIMARY KEY (account, kind, name)
    );
    CREATE TABLE iam_inline_policies (
        account  TEXT NOT NULL,
        kind     TEXT NOT NULL,
        owner    TEXT NOT NULL,
        name     TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (account, kind, owner, name)
    );
    CREATE TABLE iam_attachments (
        account    TEXT NOT NULL,
        kind       TEXT NOT NULL,
        owner      TEXT NOT NULL,
        policy_arn TEXT NOT NULL,
        PRIMARY KEY (account, kind, owner, policy_arn)
    );
    CREATE INDEX iam_attachments_by_policy ON iam_attachments (policy_arn);
    CREATE TABLE iam_group_members (
        account   TEXT NOT NULL,
        group_name TEXT NOT NULL,
        user_name TEXT NOT NULL,
        PRIMARY KEY (account, group_name, user_name)
    );
    CREATE INDEX iam_group_members_by_user ON iam_group_members (account, user_name);
    CREATE TABLE iam_policies (
        arn             TEXT PRIMARY KEY,
        account         TEXT NOT NULL,
        name            TEXT NOT NULL COLLATE NOCASE,
        id              TEXT NOT NULL UNIQUE,
        path            TEXT NOT NULL,
        description     TEXT,
        default_version TEXT NOT NULL,
        next_version    INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        tags            TEXT NOT NULL,
        UNIQUE (account, name)
    );
    CREATE TABLE iam_policy_versions (
        arn        TEXT NOT NULL REFERENCES iam_policies (arn) ON DELETE CASCADE,
        version_id TEXT NOT NULL,
        document   TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (arn, version_id)
    );
    CREATE TABLE iam_instance_profiles (
        account    TEXT NOT NULL,
        name       TEXT NOT NULL COLLATE NOCASE,
        id         TEXT NOT NULL UNIQUE,
        path       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        role_name  TEXT,
        tags       TEXT NOT NULL,
        PRIMARY KEY (account, name)
    );
    CREATE TABLE iam_access_keys (
        access_key_id TEXT PRIMARY KEY,
        account       TEXT NOT NULL,
        user_name     TEXT NOT NULL,
        sealed        BLOB NOT NULL,
        status        TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        used_at       INTEGER,
        used_service  TEXT,
        used_region   TEXT
    );
    CREATE INDEX iam_access_keys_by_user ON iam_access_keys (account, user_name);
    CREATE TABLE iam_sessions (
        access_key_id TEXT PRIMARY KEY,
        account       TEXT NOT NULL,
        sealed        BLOB NOT NULL,
        token_hash    TEXT NOT NULL,
        principal_arn TEXT NOT NULL,
        user_id       TEXT NOT NULL,
        role_name     TEXT,
        user_name     TEXT,
        policy        TEXT,
        tags          TEXT NOT NULL,
        source_identity TEXT,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL
    );
    CREATE INDEX iam_sessions_by_expiry ON iam_sessions (expires_at);
    "#,
];

const READERS: usize = 4;
/// Each reader's page cache (negative: KiB), and how much of the file it
/// maps into memory.
const READER_CACHE_KIB: i64 = -32_768;
const READER_MMAP_BYTES: i64 = 256 << 20;

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// Whether commits wait for the disk (`FULL`) or only for the OS (`NORMAL`,
/// which still survives a crash of the process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl Store {
    /// Open (creating if needed) the database at `path` and migrate it.
    pub fn open(path: &Path, durability: Durability) -> anyhow::Result<Store> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        )?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&writer)?;
        let store = Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        };
        Ok(store)
    }

    /// An in-memory-free temporary store for unit tests lives in a temp dir;
    /// this opens a store in `dir/berth.db`.
    pub fn open_in(dir: &Path) -> anyhow::Result<Store> {
        Store::open(&dir.join("berth.db"), Durability::Normal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> ApiResult<Connection> {
        if let Some(c) = self.readers.lock().unwrap().pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        // Controllers read every live row each pass: keep the pages in
        // memory rather than reading them again from the OS.
        c.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
        c.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
        Ok(c)
    }

    /// Run `f` on a consistent read snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> ApiResult<T>) -> ApiResult<T> {
        let mut conn = self.reader()?;
        let result = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let r = f(&tx);
            tx.finish()?;
            r
        };
        let mut pool = self.readers.lock().unwrap();
        if pool.len() < READERS {
            pool.push(conn);
        }
        result
    }

    /// Run `f` in a write transaction; it commits when `f` returns `Ok` and
    /// rolls back (changing nothing) when it returns `Err`.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction) -> ApiResult<T>) -> ApiResult<T> {
        self.write_then(f, |_| {})
    }

    /// [`Store::write`], then `committed` on the value once the
    /// transaction has committed, before any other write can begin: for
    /// state kept in memory beside the store that must follow its commits
    /// exactly (the placement index).
    pub fn write_then<T>(
        &self,
        f: impl FnOnce(&Transaction) -> ApiResult<T>,
        committed: impl FnOnce(&mut T),
    ) -> ApiResult<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut value = f(&tx)?;
        tx.commit()?;
        committed(&mut value);
        Ok(value)
    }
}

fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let version: usize =
        conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        anyhow::bail!(
            "the database is at schema version {version}, newer than this berth ({}); upgrade berth",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
        tracing::info!(version = i + 1, "migrated the database schema");
    }
    Ok(())
}

impl Store {
    /// This installation's id, made on first use: it tells this data dir's
    /// containers from those of other Berth servers on the same engine.
    pub fn owner_id(&self) -> ApiResult<String> {
        self.write(|tx| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('owner', ?1) ON CONFLICT (key) DO NOTHING",
                [&id],
            )?;
            Ok(
                tx.query_row("SELECT value FROM meta WHERE key = 'owner'", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }
}

/// This installation's id as stored (`None` before [`Store::owner_id`]
/// first made it).
pub fn owner_in(conn: &Connection) -> ApiResult<Option<String>> {
    optional(
        conn.query_row("SELECT value FROM meta WHERE key = 'owner'", [], |r| {
            r.get(0)
        }),
    )
}

/// Map "no row" to `None`.
/// Column `i`'s text read back as the enum it was stored from (its model
/// spelling).
pub fn text_enum<T: serde::de::DeserializeOwned>(i: usize, s: String) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(s)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub fn optional<T>(r: rusqlite::Result<T>) -> ApiResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(ApiError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open_in(dir.path()).unwrap();
            s.write(|tx| {
                tx.execute("INSERT INTO tags VALUES ('arn:x', 'k', 'v')", [])?;
                Ok(())
            })
            .unwrap();
        }
        let s = Store::open_in(dir.path()).unwrap();
        let n: i64 = s
            .read(|c| Ok(c.query_row("SELECT count(*) FROM tags", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 1);
        let v: i64 = s
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }

    #[test]
    fn failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_in(dir.path()).unwrap();
        let r: ApiResult<()> = s.write(|tx| {
            tx.execute("INSERT INTO tags VALUES ('arn:x', 'k', 'v')", [])?;
            Err(ApiError::client("no"))
        });
        assert!(r.is_err());
        let n: i64 = s
            .read(|c| Ok(c.query_row("SELECT count(*) FROM tags", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 999).unwrap();
        drop(c);
        assert!(Store::open(&path, Durability::Normal).is_err());
    }
}
