//! Launch templates: `CreateLaunchTemplate`, `CreateLaunchTemplateVersion`,
//! `DescribeLaunchTemplates`, `DescribeLaunchTemplateVersions`,
//! `ModifyLaunchTemplate` (`SetDefaultVersion`), `DeleteLaunchTemplate`.
//!
//! A template is a row in `launch_templates` (scoped by account and region,
//! names unique there) with numbered versions in `launch_template_versions`,
//! from 1, each keeping its `LaunchTemplateData` as given. Of that data Berth
//! checks and reports back `InstanceType` (it must be in the catalog),
//! `ImageId`, `UserData` (base64; what it writes to `/etc/ecs/ecs.config` is
//! read by `user_data`), `InstanceMarketOptions`, `IamInstanceProfile`,
//! `SecurityGroupIds`, `SecurityGroups`, `KeyName`, `TagSpecifications` and a
//! few flags; other members are stored but not reported.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use super::{
    any_matches, created_by, filters, invalid_value, iso_time, page, page_size, page_start,
};
use crate::catalog;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// The message EC2 gives for a malformed launch template name.
const NAME_RULES: &str = "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.";

/// `LaunchTemplateData` members reported back by Describe calls.
const REPORTED: [&str; 16] = [
    "InstanceType",
    "ImageId",
    "UserData",
    "KeyName",
    "EbsOptimized",
    "DisableApiTermination",
    "DisableApiStop",
    "InstanceInitiatedShutdownBehavior",
    "SecurityGroupIds",
    "SecurityGroups",
    "IamInstanceProfile",
    "InstanceMarketOptions",
    "Monitoring",
    "CreditSpecification",
    "TagSpecifications",
    "MetadataOptions",
];

/// EC2's launch template name rules: 3–128 characters of letters, digits and
/// `( ) . - / _`.
pub fn check_name(name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "().-/_".contains(c));
    if (3..=128).contains(&len) && chars_ok {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidLaunchTemplateName.MalformedException",
            NAME_RULES,
        ))
    }
}

/// Whether `id` has the form of a launch template id (`lt-` and 17 hex digits).
pub fn is_template_id(id: &str) -> bool {
    id.strip_prefix("lt-")
        .is_some_and(|h| h.len() == 17 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check_id(id: &str) -> ApiResult<()> {
    if is_template_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidLaunchTemplateId.Malformed",
            format!("The launch template ID '{id}' is malformed. A launch template ID has the form lt-xxxxxxxxxxxxxxxxx (17 hexadecimal digits)."),
        ))
    }
}

fn name_not_found(name: &str) -> ApiError {
    ApiError::new(
        "InvalidLaunchTemplateName.NotFoundException",
        format!("The specified launch template, with template name {name}, does not exist."),
    )
}

fn id_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidLaunchTemplateId.NotFound",
        format!("The specified launch template, with template ID {id}, does not exist."),
    )
}

fn version_not_found(version: &str, id: &str) -> ApiError {
    ApiError::new(
        "InvalidLaunchTemplateId.VersionNotFound",
        format!(
            "Could not find the specified version {version} for the launch template with ID {id}."
        ),
    )
}

/// Check the parts of `LaunchTemplateData` Berth acts on.
pub fn check_data(data: &Value) -> ApiResult<()> {
    if let Some(t) = data.get("InstanceType").and_then(Value::as_str) {
        if catalog::find(t).is_none() {
            return Err(invalid_value(format!(
                "Invalid value '{t}' for InstanceType: it is not an instance type Berth knows."
            )));
        }
    }
    if let Some(u) = data.get("UserData").and_then(Value::as_str) {
        super::user_data::decode(u).map_err(|_| {
            ApiError::new(
                "InvalidUserData.Malformed",
                "Invalid BASE64 encoding of user data.",
            )
        })?;
    }
    if let Some(m) = data.get("InstanceMarketOptions") {
        if let Some(t) = m.get("MarketType").and_then(Value::as_str) {
            if t != "spot" {
                return Err(invalid_value(format!(
                    "Invalid value '{t}' for InstanceMarketOptions.MarketType: Berth supports 'spot'."
                )));
            }
        }
        let spot = m.get("SpotOptions");
        let enum_check = |member: &str, allowed: &[&str]| -> ApiResult<()> {
            match spot.and_then(|s| s.get(member)).and_then(Value::as_str) {
                Some(v) if !allowed.contains(&v) => Err(invalid_value(format!(
                    "Invalid value '{v}' for SpotOptions.{member}: must be one of {}.",
                    allowed.join(", ")
                ))),
                _ => Ok(()),
            }
        };
        enum_check("SpotInstanceType", &["one-time", "persistent"])?;
        enum_check(
            "InstanceInterruptionBehavior",
            &["hibernate", "stop", "terminate"],
        )?;
    }
    Ok(())
}

/// The reported subset of stored `LaunchTemplateData`, in the response shape.
pub fn response_data(data: &Value) -> Value {
    let mut out = Map::new();
    for k in REPORTED {
        if let Some(v) = data.get(k).filter(|v| !v.is_null()) {
            out.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// A template as stored.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    pub default_version: i64,
    pub latest_version: i64,
    pub tags: Vec<Value>,
}

/// One version as stored.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: i64,
    pub description: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub data: Value,
}

const SELECT_TEMPLATE: &str =
    "SELECT id, name, created_at, created_by, default_version, latest_version, tags
    FROM launch_templates";

fn template_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<TemplateRow> {
    let tags: String = r.get(6)?;
    Ok(TemplateRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        created_by: r.get(3)?,
        default_version: r.get(4)?,
        latest_version: r.get(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

fn version_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    let data: String = r.get(4)?;
    Ok(VersionRow {
        version: r.get(0)?,
        description: r.get(1)?,
        created_at: r.get(2)?,
        created_by: r.get(3)?,
        data: serde_json::from_str(&data).unwrap_or_else(|_| json!({})),
    })
}

fn by_name(conn: &Connection, ctx: &Ctx, name: &str) -> ApiResult<Option<TemplateRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT_TEMPLATE} WHERE account = ?1 AND region = ?2 AND name = ?3"
        ))?
        .query_row(params![ctx.account, ctx.region, name], template_from)
        .optional()?)
}

fn by_id(conn: &Connection, ctx: &Ctx, id: &str) -> ApiResult<Option<TemplateRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT_TEMPLATE} WHERE account = ?1 AND region = ?2 AND id = ?3"
        ))?
        .query_row(params![ctx.account, ctx.region, id], template_from)
        .optional()?)
}

/// The template a request names by `LaunchTemplateId` or `LaunchTemplateName`.
pub fn find(conn: &Connection, ctx: &Ctx, input: &Value) -> ApiResult<TemplateRow> {
    let id = input.get("LaunchTemplateId").and_then(Value::as_str);
    let name = input.get("LaunchTemplateName").and_then(Value::as_str);
    match (id, name) {
        (Some(id), _) => {
            check_id(id)?;
            by_id(conn, ctx, id)?.ok_or_else(|| id_not_found(id))
        }
        (None, Some(name)) => by_name(conn, ctx, name)?.ok_or_else(|| name_not_found(name)),
        (None, None) => Err(ApiError::new(
            "MissingParameter",
            "The request must contain the parameter LaunchTemplateName or LaunchTemplateId",
        )),
    }
}

/// Which version number `spec` (`$Latest`, `$Default` or a number) means for
/// `t`; `None` when it is neither.
pub fn select_version(spec: &str, t: &TemplateRow) -> Option<i64> {
    match spec {
        "$Latest" => Some(t.latest_version),
        "$Default" => Some(t.default_version),
        n => n.parse::<i64>().ok().filter(|n| *n >= 1),
    }
}

fn load_version(conn: &Connection, t: &TemplateRow, version: i64) -> ApiResult<Option<VersionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT version, description, created_at, created_by, data
             FROM launch_template_versions WHERE template_id = ?1 AND version = ?2",
        )?
        .query_row(params![t.id, version], version_from)
        .optional()?)
}

/// The version `spec` names, or `InvalidLaunchTemplateId.VersionNotFound`.
pub fn resolve_version(conn: &Connection, t: &TemplateRow, spec: &str) -> ApiResult<VersionRow> {
    let n = select_version(spec, t).ok_or_else(|| version_not_found(spec, &t.id))?;
    load_version(conn, t, n)?.ok_or_else(|| version_not_found(spec, &t.id))
}

/// A `LaunchTemplate` in the response shape.
pub fn render_template(t: &TemplateRow) -> Value {
    let mut v = json!({
        "LaunchTemplateId": t.id,
        "LaunchTemplateName": t.name,
        "CreateTime": iso_time(t.created_at),
        "CreatedBy": t.created_by,
        "DefaultVersionNumber": t.default_version,
        "LatestVersionNumber": t.latest_version,
    });
    if !t.tags.is_empty() {
        v["Tags"] = json!(t.tags);
    }
    v
}

/// A `LaunchTemplateVersion` in the response shape.
pub fn render_version(t: &TemplateRow, v: &VersionRow) -> Value {
    let mut out = json!({
        "LaunchTemplateId": t.id,
        "LaunchTemplateName": t.name,
        "VersionNumber": v.version,
        "CreateTime": iso_time(v.created_at),
        "CreatedBy": v.created_by,
        "DefaultVersion": v.version == t.default_version,
        "LaunchTemplateData": response_data(&v.data),
    });
    if let Some(d) = &v.description {
        out["VersionDescription"] = json!(d);
    }
    out
}

fn new_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("lt-{}", &hex[..17])
}

fn template_tags(input: &Value) -> ApiResult<Vec<Value>> {
    let mut tags = Vec::new();
    for spec in input
        .get("TagSpecifications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rt = spec.get("ResourceType").and_then(Value::as_str);
        if rt.is_some_and(|r| r != "launch-template") {
            return Err(invalid_value(format!(
                "'{}' is not a valid taggable resource type for this operation.",
                rt.unwrap_or_default()
            )));
        }
        for tag in spec
            .get("Tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = tag.get("Key").and_then(Value::as_str).unwrap_or_default();
            tags.retain(|t: &Value| t["Key"] != json!(key));
            tags.push(json!({
                "Key": key,
                "Value": tag.get("Value").and_then(Value::as_str).unwrap_or_default(),
            }));
        }
    }
    Ok(tags)
}

fn insert_version(
    conn: &Connection,
    ctx: &Ctx,
    template_id: &str,
    version: i64,
    description: Option<&str>,
    data: &Value,
) -> ApiResult<VersionRow> {
    let now = ctx.now_millis();
    conn.prepare_cached(
        "INSERT INTO launch_template_versions (template_id, version, description, created_at, created_by, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        template_id,
        version,
        description,
        now,
        created_by(ctx),
        data.to_string()
    ])?;
    Ok(VersionRow {
        version,
        description: description.map(str::to_string),
        created_at: now,
        created_by: created_by(ctx),
        data: data.clone(),
    })
}

/// `CreateLaunchTemplate`.
pub fn create(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let name = input
        .get("LaunchTemplateName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    check_name(&name)?;
    let data = input
        .get("LaunchTemplateData")
        .cloned()
        .unwrap_or(json!({}));
    check_data(&data)?;
    let tags = template_tags(input)?;
    let description = input.get("VersionDescription").and_then(Value::as_str);
    store.write(|tx| {
        if by_name(tx, ctx, &name)?.is_some() {
            return Err(ApiError::new(
                "InvalidLaunchTemplateName.AlreadyExistsException",
                "Launch template name already in use.",
            ));
        }
        let t = TemplateRow {
            id: new_id(),
            name: name.clone(),
            created_at: ctx.now_millis(),
            created_by: created_by(ctx),
            default_version: 1,
            latest_version: 1,
            tags: tags.clone(),
        };
        tx.prepare_cached(
            "INSERT INTO launch_templates (id, account, region, name, created_at, created_by,
                default_version, latest_version, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 1, ?7)",
        )?
        .execute(params![
            t.id,
            ctx.account,
            ctx.region,
            t.name,
            t.created_at,
            t.created_by,
            json!(t.tags).to_string()
        ])?;
        insert_version(tx, ctx, &t.id, 1, description, &data)?;
        Ok(json!({"LaunchTemplate": render_template(&t)}))
    })
}

/// `CreateLaunchTemplateVersion`: the new version takes the source version's
/// data (when `SourceVersion` is given) with the given members replacing
/// theirs.
pub fn create_version(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let given = input
        .get("LaunchTemplateData")
        .cloned()
        .unwrap_or(json!({}));
    let description = input.get("VersionDescription").and_then(Value::as_str);
    store.write(|tx| {
        let mut t = find(tx, ctx, input)?;
        let mut data = match input.get("SourceVersion").and_then(Value::as_str) {
            Some(spec) => resolve_version(tx, &t, spec)?.data,
            None => json!({}),
        };
        if let (Some(base), Some(over)) = (data.as_object_mut(), given.as_object()) {
            for (k, v) in over {
                base.insert(k.clone(), v.clone());
            }
        }
        check_data(&data)?;
        let version = t.latest_version + 1;
        let v = insert_version(tx, ctx, &t.id, version, description, &data)?;
        tx.prepare_cached("UPDATE launch_templates SET latest_version = ?2 WHERE id = ?1")?
            .execute(params![t.id, version])?;
        t.latest_version = version;
        Ok(json!({"LaunchTemplateVersion": render_version(&t, &v)}))
    })
}

/// Whether a template passes one `DescribeLaunchTemplates` filter.
pub fn template_matches(t: &TemplateRow, f: &super::Filter) -> ApiResult<bool> {
    let tag = |key: &str| {
        t.tags
            .iter()
            .find(|x| x["Key"] == json!(key))
            .and_then(|x| x["Value"].as_str())
    };
    Ok(match f.name.as_str() {
        "launch-template-name" => any_matches(f, &t.name),
        "tag-key" => t
            .tags
            .iter()
            .filter_map(|x| x["Key"].as_str())
            .any(|k| any_matches(f, k)),
        name if name.starts_with("tag:") => tag(&name[4..]).is_some_and(|v| any_matches(f, v)),
        other => return Err(invalid_value(format!("The filter '{other}' is invalid"))),
    })
}

/// `DescribeLaunchTemplates`: by ids, names, filters; in creation order.
pub fn describe(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let strings = |k: &str| -> Vec<String> {
        input
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let ids = strings("LaunchTemplateIds");
    let names = strings("LaunchTemplateNames");
    let filters = filters(input);
    let rows = store.read(|c| {
        let mut rows = Vec::new();
        if ids.is_empty() && names.is_empty() {
            let mut stmt = c.prepare_cached(&format!(
                "{SELECT_TEMPLATE} WHERE account = ?1 AND region = ?2 ORDER BY created_at, id"
            ))?;
            let all = stmt.query_map(params![ctx.account, ctx.region], template_from)?;
            for r in all {
                rows.push(r?);
            }
        }
        for id in &ids {
            check_id(id)?;
            rows.push(by_id(c, ctx, id)?.ok_or_else(|| id_not_found(id))?);
        }
        for name in &names {
            rows.push(by_name(c, ctx, name)?.ok_or_else(|| name_not_found(name))?);
        }
        Ok(rows)
    })?;
    let mut seen = std::collections::HashSet::new();
    let mut matching = Vec::new();
    for t in rows {
        if !seen.insert(t.id.clone()) {
            continue;
        }
        let mut ok = true;
        for f in &filters {
            ok &= template_matches(&t, f)?;
        }
        if ok {
            matching.push(t);
        }
    }
    let start = page_start(input)?;
    let (items, token) = page(matching, start, page_size(input, usize::MAX));
    let mut out = json!({"LaunchTemplates": items.iter().map(render_template).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// `DescribeLaunchTemplateVersions`: the versions named (`N`, `$Latest`,
/// `$Default`) in the order given, or every version from the newest,
/// bounded by `MinVersion`/`MaxVersion`.
pub fn describe_versions(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let filters = filters(input);
    for f in &filters {
        if !["is-default-version", "instance-type", "image-id"].contains(&f.name.as_str()) {
            return Err(invalid_value(format!("The filter '{}' is invalid", f.name)));
        }
    }
    let (t, versions) = store.read(|c| {
        let t = find(c, ctx, input)?;
        let specs: Vec<&str> = input
            .get("Versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut versions = Vec::new();
        if specs.is_empty() {
            let bound = |k: &str| -> ApiResult<Option<i64>> {
                match input.get(k).and_then(Value::as_str) {
                    None => Ok(None),
                    Some(spec) => select_version(spec, &t)
                        .map(Some)
                        .ok_or_else(|| version_not_found(spec, &t.id)),
                }
            };
            let min = bound("MinVersion")?.unwrap_or(1);
            let max = bound("MaxVersion")?.unwrap_or(i64::MAX);
            let mut stmt = c.prepare_cached(
                "SELECT version, description, created_at, created_by, data
                 FROM launch_template_versions
                 WHERE template_id = ?1 AND version BETWEEN ?2 AND ?3 ORDER BY version DESC",
            )?;
            for v in stmt.query_map(params![t.id, min, max], version_from)? {
                versions.push(v?);
            }
        } else {
            for spec in specs {
                let v = resolve_version(c, &t, spec)?;
                if !versions.iter().any(|x: &VersionRow| x.version == v.version) {
                    versions.push(v);
                }
            }
        }
        Ok((t, versions))
    })?;
    let matching: Vec<VersionRow> = versions
        .into_iter()
        .filter(|v| {
            filters.iter().all(|f| {
                let value = match f.name.as_str() {
                    "is-default-version" => (v.version == t.default_version).to_string(),
                    "instance-type" => v.data["InstanceType"].as_str().unwrap_or("").to_string(),
                    _ => v.data["ImageId"].as_str().unwrap_or("").to_string(),
                };
                any_matches(f, &value)
            })
        })
        .collect();
    let start = page_start(input)?;
    let (items, token) = page(matching, start, page_size(input, usize::MAX));
    let mut out = json!({
        "LaunchTemplateVersions": items.iter().map(|v| render_version(&t, v)).collect::<Vec<_>>()
    });
    if let Some(tok) = token {
        out["NextToken"] = json!(tok);
    }
    Ok(out)
}

/// `ModifyLaunchTemplate`: `SetDefaultVersion`.
pub fn modify(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    store.write(|tx| {
        let mut t = find(tx, ctx, input)?;
        if let Some(spec) = input.get("DefaultVersion").and_then(Value::as_str) {
            let v = resolve_version(tx, &t, spec)?;
            tx.prepare_cached("UPDATE launch_templates SET default_version = ?2 WHERE id = ?1")?
                .execute(params![t.id, v.version])?;
            t.default_version = v.version;
        }
        Ok(json!({"LaunchTemplate": render_template(&t)}))
    })
}

/// `DeleteLaunchTemplate`: the template and every version; its name is free
/// again at once.
pub fn delete(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    store.write(|tx| {
        let t = find(tx, ctx, input)?;
        tx.prepare_cached("DELETE FROM launch_template_versions WHERE template_id = ?1")?
            .execute([&t.id])?;
        tx.prepare_cached("DELETE FROM launch_templates WHERE id = ?1")?
            .execute([&t.id])?;
        Ok(json!({"LaunchTemplate": render_template(&t)}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_in(dir.path()).unwrap();
        (dir, s)
    }

    fn ctx() -> Ctx {
        Ctx::for_tests(chrono::Utc.timestamp_opt(1_700_000_000, 0).unwrap())
    }

    #[test]
    fn names() {
        assert!(check_name("web-1.(a)/b_c").is_ok());
        assert!(check_name("ab").is_err());
        assert!(check_name(&"a".repeat(128)).is_ok());
        let e = check_name(&"a".repeat(129)).unwrap_err();
        assert_eq!(e.code, "InvalidLaunchTemplateName.MalformedException");
        assert!(check_name("has space").is_err());
        assert!(check_name("star*").is_err());
    }

    #[test]
    fn ids() {
        assert!(is_template_id("lt-0abcdef1234567890"));
        assert!(!is_template_id("lt-0abc"));
        assert!(!is_template_id("ami-0abcdef1234567890"));
        assert!(is_template_id(&new_id()));
    }

    #[test]
    fn version_selection() {
        let t = TemplateRow {
            id: "lt-0abcdef1234567890".into(),
            name: "n".into(),
            created_at: 0,
            created_by: "x".into(),
            default_version: 2,
            latest_version: 5,
            tags: vec![],
        };
        assert_eq!(select_version("$Latest", &t), Some(5));
        assert_eq!(select_version("$Default", &t), Some(2));
        assert_eq!(select_version("3", &t), Some(3));
        assert_eq!(select_version("0", &t), None);
        assert_eq!(select_version("latest", &t), None);
    }

    #[test]
    fn lifecycle_in_the_store() {
        let (_d, s) = store();
        let c = ctx();
        let out = create(
            &s,
            &c,
            &json!({"LaunchTemplateName": "web", "LaunchTemplateData": {"InstanceType": "t3.micro", "ImageId": "ami-1", "BlockDeviceMappings": []},
                    "TagSpecifications": [{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a"}]}]}),
        )
        .unwrap();
        let id = out["LaunchTemplate"]["LaunchTemplateId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            out["LaunchTemplate"]["CreatedBy"],
            "arn:aws:iam::000000000000:root"
        );
        let e = create(
            &s,
            &c,
            &json!({"LaunchTemplateName": "web", "LaunchTemplateData": {}}),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidLaunchTemplateName.AlreadyExistsException");
        let v2 = create_version(
            &s,
            &c,
            &json!({"LaunchTemplateId": id, "SourceVersion": "1", "LaunchTemplateData": {"InstanceType": "m7g.large"}}),
        )
        .unwrap();
        let data = &v2["LaunchTemplateVersion"]["LaunchTemplateData"];
        assert_eq!(data["InstanceType"], "m7g.large");
        assert_eq!(data["ImageId"], "ami-1");
        assert!(data.get("BlockDeviceMappings").is_none());
        assert_eq!(v2["LaunchTemplateVersion"]["DefaultVersion"], false);
        let e = create_version(
            &s,
            &c,
            &json!({"LaunchTemplateName": "web", "SourceVersion": "9", "LaunchTemplateData": {}}),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidLaunchTemplateId.VersionNotFound");
        let vs = describe_versions(&s, &c, &json!({"LaunchTemplateName": "web"})).unwrap();
        let nums: Vec<i64> = vs["LaunchTemplateVersions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["VersionNumber"].as_i64().unwrap())
            .collect();
        assert_eq!(nums, vec![2, 1]);
        let m = modify(
            &s,
            &c,
            &json!({"LaunchTemplateName": "web", "DefaultVersion": "$Latest"}),
        )
        .unwrap();
        assert_eq!(m["LaunchTemplate"]["DefaultVersionNumber"], 2);
        let d = describe_versions(
            &s,
            &c,
            &json!({"LaunchTemplateId": id, "Versions": ["$Default"]}),
        )
        .unwrap();
        assert_eq!(d["LaunchTemplateVersions"][0]["VersionNumber"], 2);
        let by_tag = describe(
            &s,
            &c,
            &json!({"Filters": [{"Name": "tag:team", "Values": ["a"]}]}),
        )
        .unwrap();
        assert_eq!(by_tag["LaunchTemplates"].as_array().unwrap().len(), 1);
        delete(&s, &c, &json!({"LaunchTemplateName": "web"})).unwrap();
        let e = describe(&s, &c, &json!({"LaunchTemplateNames": ["web"]})).unwrap_err();
        assert_eq!(e.code, "InvalidLaunchTemplateName.NotFoundException");
        let e = describe(&s, &c, &json!({"LaunchTemplateIds": [id]})).unwrap_err();
        assert_eq!(e.code, "InvalidLaunchTemplateId.NotFound");
    }

    #[test]
    fn data_checks() {
        assert!(check_data(&json!({"InstanceType": "t3.micro"})).is_ok());
        assert_eq!(
            check_data(&json!({"InstanceType": "z9.mega"}))
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(
            check_data(&json!({"UserData": "%%%"})).unwrap_err().code,
            "InvalidUserData.Malformed"
        );
        assert!(check_data(&json!({"InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}})).is_ok());
        assert!(check_data(&json!({"InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "forever"}}})).is_err());
    }
}
