//! Parameters: every Parameter Store operation Berth serves, the typed
//! version row, and [`Ssm::resolve_value_from`].

use rusqlite::{params, Connection, OptionalExtension};

use super::names::{self, Reference, Selector};
use super::shapes::*;
use super::{not_found, validation, Ssm};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::store::text_enum;
use crate::wire::Empty;

/// Values a standard parameter holds (characters); advanced: 8 KiB.
const STANDARD_MAX: usize = 4096;
const ADVANCED_MAX: usize = 8192;
/// Versions kept per parameter.
const MAX_VERSIONS: i64 = 100;
/// Standard parameters per account and region.
const MAX_STANDARD: i64 = 10_000;
const MAX_LABELS: usize = 10;
const MAX_TAGS: usize = 50;

/// One version of a parameter, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub name: String,
    pub version: i64,
    pub kind: ParameterType,
    /// The value of a String or StringList.
    pub value: Option<String>,
    /// A SecureString's value, sealed by KMS.
    pub sealed: Option<Vec<u8>>,
    /// The KMS key that sealed it (its ARN).
    pub key_id: Option<String>,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    pub data_type: String,
    pub tier: ParameterTier,
    pub labels: Vec<String>,
    pub modified_at: i64,
    pub modified_by: String,
}

const COLUMNS: &str = "name, version, type, value, sealed, key_id, description, allowed_pattern, \
    data_type, tier, labels, modified_at, modified_by";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<VersionRow> {
    let labels: String = r.get(10)?;
    Ok(VersionRow {
        name: r.get(0)?,
        version: r.get(1)?,
        kind: text_enum(2, r.get(2)?)?,
        value: r.get(3)?,
        sealed: r.get(4)?,
        key_id: r.get(5)?,
        description: r.get(6)?,
        allowed_pattern: r.get(7)?,
        data_type: r.get(8)?,
        tier: text_enum(9, r.get(9)?)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        modified_at: r.get(11)?,
        modified_by: r.get(12)?,
    })
}

fn versions(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Vec<VersionRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM ssm_parameter_versions
         WHERE account = ?1 AND region = ?2 AND name = ?3 ORDER BY version"
    ))?;
    let rows = st.query_map(params![account, region, name], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn current(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Option<VersionRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM ssm_parameter_versions v
         WHERE account = ?1 AND region = ?2 AND name = ?3
           AND version = (SELECT version FROM ssm_parameters p
                          WHERE p.account = ?1 AND p.region = ?2 AND p.name = ?3)"
    ))?;
    Ok(st
        .query_row(params![account, region, name], from_row)
        .optional()?)
}

fn save_version(tx: &Connection, account: &str, region: &str, v: &VersionRow) -> ApiResult<()> {
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO ssm_parameter_versions (account, region, {COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            account,
            region,
            v.name,
            v.version,
            v.kind.as_str(),
            v.value,
            v.sealed,
            v.key_id,
            v.description,
            v.allowed_pattern,
            v.data_type,
            v.tier.as_str(),
            serde_json::to_string(&v.labels).expect("labels serialise"),
            v.modified_at,
            v.modified_by,
        ],
    )?;
    Ok(())
}

/// The version a reference names, in the caller's account (an ARN may
/// name another region of it).
fn find(conn: &Connection, ctx: &Ctx, text: &str) -> ApiResult<(VersionRow, Reference)> {
    let r = names::reference(text).ok_or_else(not_found)?;
    let (region, account) = scope(ctx, &r)?;
    for name in &r.candidates {
        let Some(cur) = current(conn, &account, &region, name)? else {
            continue;
        };
        let found = match &r.selector {
            Selector::Latest => Some(cur),
            Selector::Version(v) => versions(conn, &account, &region, name)?
                .into_iter()
                .find(|x| x.version == *v),
            Selector::Label(l) => versions(conn, &account, &region, name)?
                .into_iter()
                .find(|x| x.labels.contains(l)),
        };
        return match found {
            Some(v) => Ok((v, r)),
            None => Err(version_not_found(name, &r.selector)),
        };
    }
    Err(not_found())
}

fn scope(ctx: &Ctx, r: &Reference) -> ApiResult<(String, String)> {
    match &r.arn_scope {
        Some((region, account)) if *account == ctx.account => Ok((region.clone(), account.clone())),
        Some(_) => Err(not_found()),
        None => Ok((ctx.region.clone(), ctx.account.clone())),
    }
}

fn version_not_found(name: &str, sel: &Selector) -> ApiError {
    let what = match sel {
        Selector::Version(v) => format!("version {v}"),
        Selector::Label(l) => format!("label {l}"),
        Selector::Latest => "the latest version".into(),
    };
    ApiError::new(
        "ParameterVersionNotFound",
        format!(
            "Systems Manager could not find {what} of {name}. Verify the version and try again."
        ),
    )
}

impl Ssm {
    /// A version's value: plain, decrypted, or (a SecureString read
    /// without decryption) the ciphertext as base64, as SSM returns it.
    fn value(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        v: &VersionRow,
        decrypt: bool,
    ) -> ApiResult<String> {
        match (&v.value, &v.sealed) {
            (Some(plain), _) => Ok(plain.clone()),
            (None, Some(blob)) if decrypt => {
                let arn = names::arn(account, region, &v.name);
                let (_, bytes) =
                    self.kms
                        .unseal(conn, account, region, blob, &[("PARAMETER_ARN", &arn)])?;
                String::from_utf8(bytes)
                    .map_err(|_| ApiError::internal("a parameter value is not UTF-8"))
            }
            (None, Some(blob)) => Ok(crate::kms::keys::b64(blob)),
            (None, None) => Err(ApiError::internal("a parameter version holds no value")),
        }
    }

    fn parameter(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        v: &VersionRow,
        sel: &Selector,
        decrypt: bool,
    ) -> ApiResult<Parameter> {
        Ok(Parameter {
            arn: Some(names::arn(account, region, &v.name)),
            data_type: Some(v.data_type.clone()),
            last_modified_date: Some(millis_to_epoch(v.modified_at)),
            name: Some(v.name.clone()),
            selector: sel.text(),
            source_result: None,
            r#type: Some(v.kind),
            value: Some(self.value(conn, account, region, v, decrypt)?),
            version: Some(v.version),
        })
    }

    /// The value a container secret's `valueFrom` names (a parameter name
    /// or ARN, with an optional `:version` or `:label`), decrypted; for the
    /// agent resolving a task's `secrets` in `account` and `region`.
    pub fn resolve_value_from(
        &self,
        account: &str,
        region: &str,
        value_from: &str,
    ) -> ApiResult<String> {
        let ctx = Ctx::internal(account, region, 0);
        self.store.read(|conn| {
            let (v, _) = find(conn, &ctx, value_from)?;
            let (region, account) =
                scope(&ctx, &names::reference(value_from).ok_or_else(not_found)?)?;
            self.value(conn, &account, &region, &v, true)
        })
    }
}

fn check_value(
    req: &PutParameterRequest,
    tier: ParameterTier,
    kind: ParameterType,
) -> ApiResult<()> {
    let len = req.value.chars().count();
    if len == 0 {
        return Err(validation(
            "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if tier == ParameterTier::Standard && len > STANDARD_MAX {
        return Err(validation(format!(
            "Standard tier parameters support a maximum parameter value of {STANDARD_MAX} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html"
        )));
    }
    if len > ADVANCED_MAX {
        return Err(validation(format!(
            "Advanced tier parameters support a maximum parameter value of {ADVANCED_MAX} characters."
        )));
    }
    if kind == ParameterType::StringList && req.value.split(',').any(|s| s.is_empty()) {
        return Err(validation(
            "Parameter value of type StringList can't contain empty items.",
        ));
    }
    if let Some(p) = &req.allowed_pattern {
        let re = regex::Regex::new(p).map_err(|_| {
            validation(format!(
                "Parameter allowedPattern {p} is not a valid regular expression."
            ))
        })?;
        if !re.is_match(&req.value) {
            return Err(ApiError::new(
                "ParameterPatternMismatchException",
                format!("Parameter value, cannot be validated against allowedPattern: {p}"),
            ));
        }
    }
    Ok(())
}

fn data_type(req: &PutParameterRequest, kind: ParameterType) -> ApiResult<String> {
    let dt = req.data_type.clone().unwrap_or_else(|| "text".into());
    match dt.as_str() {
        "text" => Ok(dt),
        "aws:ec2:image" if kind == ParameterType::String => {
            let ami = req
                .value
                .strip_prefix("ami-")
                .is_some_and(|h| (8..=17).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()));
            if !ami {
                return Err(validation(format!(
                    "Parameter value {} is not a valid AMI ID: it must look like ami-12345abcdeEXAMPLE.",
                    redact(kind)
                )));
            }
            Ok(dt)
        }
        "aws:ec2:image" => Err(validation("The aws:ec2:image data type is supported only for String parameters.")),
        other => Err(ApiError::new(
            "UnsupportedParameterType",
            format!("The following data type is not supported: {other} (Data type names are all lowercase.)"),
        )),
    }
}

/// What a message may say of a value: never a SecureString's.
fn redact(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::SecureString => "(a SecureString)",
        _ => "given",
    }
}

/// `PutParameter`.
pub fn put(ssm: &Ssm, ctx: &Ctx, req: PutParameterRequest) -> ApiResult<PutParameterResult> {
    names::check_name(&req.name)?;
    let overwrite = req.overwrite.unwrap_or(false);
    if overwrite && req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(validation(
            "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
        ));
    }
    if req.policies.is_some() {
        return Err(ApiError::new(
            "InvalidPolicyTypeException",
            "Parameter policies (Expiration, ExpirationNotification, NoChangeNotification) are not supported by Berth.",
        ));
    }
    let tags = req.tags.clone().unwrap_or_default();
    check_tags(&tags)?;
    let (account, region) = (ctx.account.as_str(), ctx.region.as_str());
    let (version, tier) = ssm.store.write(|tx| {
        let cur = current(tx, account, region, &req.name)?;
        if cur.is_some() && !overwrite {
            return Err(ApiError::new(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        let kind = match (req.r#type, &cur) {
            (Some(t), _) => t,
            (None, Some(c)) => c.kind,
            (None, None) => {
                return Err(validation(
                    "A parameter type is required when you create a parameter.",
                ))
            }
        };
        if req.key_id.is_some() && kind != ParameterType::SecureString {
            return Err(validation("KeyId is required for SecureString type parameter only."));
        }
        let len = req.value.chars().count();
        let tier = match (req.tier, cur.as_ref().map(|c| c.tier)) {
            (Some(ParameterTier::Standard), Some(ParameterTier::Advanced)) => {
                return Err(validation(
                    "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
                ))
            }
            (Some(ParameterTier::IntelligentTiering), prev) | (None, prev) => {
                if len > STANDARD_MAX || prev == Some(ParameterTier::Advanced) {
                    ParameterTier::Advanced
                } else {
                    ParameterTier::Standard
                }
            }
            (Some(t), _) => t,
        };
        check_value(&req, tier, kind)?;
        let data_type = data_type(&req, kind)?;
        if cur.is_none() {
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM ssm_parameters WHERE account = ?1 AND region = ?2",
                params![account, region],
                |r| r.get(0),
            )?;
            if tier == ParameterTier::Standard && count >= MAX_STANDARD {
                return Err(ApiError::new(
                    "ParameterLimitExceeded",
                    "You have exceeded the number of parameters for this AWS account. Delete unnecessary parameters and try again.",
                ));
            }
        }
        let version = cur.as_ref().map_or(1, |c| c.version + 1);
        // The oldest version leaves when the parameter would hold more
        // than 100; SSM refuses if it carries a label.
        if let Some(c) = &cur {
            let all = versions(tx, account, region, &c.name)?;
            if all.len() as i64 >= MAX_VERSIONS {
                let oldest = &all[0];
                if !oldest.labels.is_empty() {
                    return Err(ApiError::new(
                        "ParameterMaxVersionLimitExceeded",
                        format!("You attempted to create a new version of {} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", c.name, oldest.version),
                    ));
                }
                tx.execute(
                    "DELETE FROM ssm_parameter_versions WHERE account = ?1 AND region = ?2 AND name = ?3 AND version = ?4",
                    params![account, region, c.name, oldest.version],
                )?;
            }
        }
        let arn = names::arn(account, region, &req.name);
        let (value, sealed, key_id) = if kind == ParameterType::SecureString {
            let s = ssm.kms.seal(
                tx,
                account,
                region,
                req.key_id.as_deref(),
                "alias/aws/ssm",
                req.value.as_bytes(),
                &[("PARAMETER_ARN", &arn)],
                ctx.now_millis(),
            )?;
            (None, Some(s.blob), Some(s.key_arn))
        } else {
            (Some(req.value.clone()), None, None)
        };
        let row = VersionRow {
            name: req.name.clone(),
            version,
            kind,
            value,
            sealed,
            key_id,
            description: req
                .description
                .clone()
                .or_else(|| cur.as_ref().and_then(|c| c.description.clone())),
            allowed_pattern: req
                .allowed_pattern
                .clone()
                .or_else(|| cur.as_ref().and_then(|c| c.allowed_pattern.clone())),
            data_type,
            tier,
            labels: Vec::new(),
            modified_at: ctx.now_millis(),
            modified_by: ctx.principal_arn.clone(),
        };
        save_version(tx, account, region, &row)?;
        if cur.is_some() {
            tx.execute(
                "UPDATE ssm_parameters SET version = ?4 WHERE account = ?1 AND region = ?2 AND name = ?3",
                params![account, region, req.name, version],
            )?;
        } else {
            tx.execute(
                "INSERT INTO ssm_parameters (account, region, name, version, tags) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account, region, req.name, version, serde_json::to_string(&tags).expect("tags serialise")],
            )?;
        }
        Ok((version, tier))
    })?;
    Ok(PutParameterResult {
        tier: Some(tier),
        version: Some(version),
    })
}

/// `GetParameter`.
pub fn get(ssm: &Ssm, ctx: &Ctx, req: GetParameterRequest) -> ApiResult<GetParameterResult> {
    let decrypt = req.with_decryption.unwrap_or(false);
    let p = ssm.store.read(|conn| {
        let (v, r) = find(conn, ctx, &req.name)?;
        let (region, account) = scope(ctx, &r)?;
        ssm.parameter(conn, &account, &region, &v, &r.selector, decrypt)
    })?;
    Ok(GetParameterResult { parameter: Some(p) })
}

/// `GetParameters`: up to 10; those not found are listed, not failed.
pub fn get_many(ssm: &Ssm, ctx: &Ctx, req: GetParametersRequest) -> ApiResult<GetParametersResult> {
    let decrypt = req.with_decryption.unwrap_or(false);
    let (found, invalid) = ssm.store.read(|conn| {
        let mut found = Vec::new();
        let mut invalid = Vec::new();
        for name in &req.names {
            match find(conn, ctx, name) {
                Ok((v, r)) => {
                    let (region, account) = scope(ctx, &r)?;
                    found.push(ssm.parameter(conn, &account, &region, &v, &r.selector, decrypt)?);
                }
                Err(e) if e.code == "ParameterNotFound" || e.code == "ParameterVersionNotFound" => {
                    invalid.push(name.clone())
                }
                Err(e) => return Err(e),
            }
        }
        Ok((found, invalid))
    })?;
    Ok(GetParametersResult {
        invalid_parameters: Some(invalid),
        parameters: Some(found),
    })
}

/// Every parameter's current version in the caller's account and region,
/// by name.
fn all_current(conn: &Connection, ctx: &Ctx) -> ApiResult<Vec<VersionRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {} FROM ssm_parameter_versions v JOIN ssm_parameters p
           ON p.account = v.account AND p.region = v.region AND p.name = v.name AND p.version = v.version
         WHERE v.account = ?1 AND v.region = ?2 ORDER BY v.name",
        COLUMNS
            .split(", ")
            .map(|c| format!("v.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = st.query_map(params![ctx.account, ctx.region], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn token_start(token: Option<&str>) -> ApiResult<usize> {
    match token {
        None => Ok(0),
        Some(t) => crate::paging::offset(t, "ssm")
            .ok_or_else(|| ApiError::new("InvalidNextToken", "The specified token isn't valid.")),
    }
}

/// Whether a version passes a `ParameterStringFilter`.
fn passes(v: &VersionRow, f: &ParameterStringFilter, tags: &[Tag]) -> ApiResult<bool> {
    let values = f.values.clone().unwrap_or_default();
    let option = f.option.as_deref().unwrap_or("Equals");
    let any = |field: &str| match option {
        "Equals" => values.iter().any(|x| x == field),
        "BeginsWith" => values.iter().any(|x| field.starts_with(x.as_str())),
        "Contains" => values.iter().any(|x| field.contains(x.as_str())),
        _ => false,
    };
    let bad_option = || {
        validation(format!(
            "The following filter option is not valid: {option}. Valid options include: [Equals, BeginsWith, Contains] for Name, [Recursive, OneLevel] for Path, [Equals] for the other keys."
        ))
    };
    let key = f.key.as_str();
    if let Some(tag) = key.strip_prefix("tag:") {
        return Ok(tags
            .iter()
            .any(|t| t.key == tag && (values.is_empty() || values.contains(&t.value))));
    }
    if !matches!(key, "Name" | "Path") && option != "Equals" {
        return Err(bad_option());
    }
    Ok(match key {
        "Name" => {
            if !matches!(option, "Equals" | "BeginsWith" | "Contains") {
                return Err(bad_option());
            }
            any(&v.name) || any(v.name.trim_start_matches('/'))
        }
        "Path" => {
            let recursive = match option {
                "Equals" | "OneLevel" => false,
                "Recursive" => true,
                _ => return Err(bad_option()),
            };
            values.iter().any(|p| names::under(p, &v.name, recursive))
        }
        "Type" => any(v.kind.as_str()),
        "KeyId" => v.key_id.as_deref().is_some_and(|k| {
            any(k) || values.iter().any(|x| k.ends_with(&format!("/{x}")))
        }) || (values.iter().any(|x| x == "alias/aws/ssm") && v.key_id.is_some()),
        "Tier" => any(v.tier.as_str()),
        "DataType" => any(&v.data_type),
        "Label" => v.labels.iter().any(|l| values.contains(l)),
        other => {
            return Err(validation(format!(
                "The following filter key is not valid: {other}. Valid filter keys include: [Path, Name, Type, KeyId, Tier, DataType, Label, tag:<key>]."
            )))
        }
    })
}

fn tags_of(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Option<Vec<Tag>>> {
    let t: Option<String> = conn
        .query_row(
            "SELECT tags FROM ssm_parameters WHERE account = ?1 AND region = ?2 AND name = ?3",
            params![account, region, name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(t.map(|t| serde_json::from_str(&t).unwrap_or_default()))
}

/// `GetParametersByPath`: the parameters under a path (one level, or
/// all with `Recursive`), filtered by Type, KeyId or Label.
pub fn get_by_path(
    ssm: &Ssm,
    ctx: &Ctx,
    req: GetParametersByPathRequest,
) -> ApiResult<GetParametersByPathResult> {
    if !req.path.starts_with('/') {
        return Err(validation(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".",
        ));
    }
    if names::depth(&req.path) > names::MAX_DEPTH {
        return Err(ApiError::new(
            "HierarchyLevelLimitExceededException",
            format!(
                "Parameter path hierarchy depth exceeded: the most is {}.",
                names::MAX_DEPTH
            ),
        ));
    }
    let filters = req.parameter_filters.clone().unwrap_or_default();
    if let Some(f) = filters
        .iter()
        .find(|f| !matches!(f.key.as_str(), "Type" | "KeyId" | "Label"))
    {
        return Err(validation(format!(
            "The following filter key is not valid: {}. Valid filter keys include: [Type, KeyId, Label].",
            f.key
        )));
    }
    let size = req.max_results.unwrap_or(10) as usize;
    let start = token_start(req.next_token.as_deref())?;
    let decrypt = req.with_decryption.unwrap_or(false);
    let recursive = req.recursive.unwrap_or(false);
    let (page, token) = ssm.store.read(|conn| {
        let mut matched = Vec::new();
        for v in all_current(conn, ctx)? {
            if !names::under(&req.path, &v.name, recursive) {
                continue;
            }
            let mut ok = true;
            for f in &filters {
                ok &= passes(&v, f, &[])?;
            }
            if ok {
                matched.push(v);
            }
        }
        let (page, token) = crate::paging::offset_page(matched, start, size, "ssm");
        let page = page
            .iter()
            .map(|v| {
                ssm.parameter(
                    conn,
                    &ctx.account,
                    &ctx.region,
                    v,
                    &Selector::Latest,
                    decrypt,
                )
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((page, token))
    })?;
    Ok(GetParametersByPathResult {
        next_token: token,
        parameters: Some(page),
    })
}

fn delete_one(tx: &Connection, ctx: &Ctx, name: &str) -> ApiResult<bool> {
    let n = tx.execute(
        "DELETE FROM ssm_parameters WHERE account = ?1 AND region = ?2 AND name = ?3",
        params![ctx.account, ctx.region, name],
    )?;
    tx.execute(
        "DELETE FROM ssm_parameter_versions WHERE account = ?1 AND region = ?2 AND name = ?3",
        params![ctx.account, ctx.region, name],
    )?;
    Ok(n > 0)
}

/// `DeleteParameter`: every version and the tags.
pub fn delete(ssm: &Ssm, ctx: &Ctx, req: DeleteParameterRequest) -> ApiResult<Empty> {
    ssm.store.write(|tx| {
        if delete_one(tx, ctx, &req.name)? {
            Ok(())
        } else {
            Err(not_found())
        }
    })?;
    Ok(Empty {})
}

/// `DeleteParameters`: up to 10; those not found are listed.
pub fn delete_many(
    ssm: &Ssm,
    ctx: &Ctx,
    req: DeleteParametersRequest,
) -> ApiResult<DeleteParametersResult> {
    let (deleted, invalid) = ssm.store.write(|tx| {
        let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
        for name in &req.names {
            if delete_one(tx, ctx, name)? {
                deleted.push(name.clone());
            } else {
                invalid.push(name.clone());
            }
        }
        Ok((deleted, invalid))
    })?;
    Ok(DeleteParametersResult {
        deleted_parameters: Some(deleted),
        invalid_parameters: Some(invalid),
    })
}

fn metadata(ctx: &Ctx, v: &VersionRow) -> ParameterMetadata {
    ParameterMetadata {
        arn: Some(names::arn(&ctx.account, &ctx.region, &v.name)),
        allowed_pattern: v.allowed_pattern.clone(),
        data_type: Some(v.data_type.clone()),
        description: v.description.clone(),
        key_id: v.key_id.clone(),
        last_modified_date: Some(millis_to_epoch(v.modified_at)),
        last_modified_user: Some(v.modified_by.clone()),
        name: Some(v.name.clone()),
        policies: Some(Vec::new()),
        tier: Some(v.tier),
        r#type: Some(v.kind),
        version: Some(v.version),
    }
}

/// `DescribeParameters`: metadata of current versions, never values.
pub fn describe(
    ssm: &Ssm,
    ctx: &Ctx,
    req: DescribeParametersRequest,
) -> ApiResult<DescribeParametersResult> {
    if req.filters.is_some() && req.parameter_filters.is_some() {
        return Err(validation(
            "You can use either Filters or ParameterFilters in a single request.",
        ));
    }
    if req.shared == Some(true) {
        return Ok(DescribeParametersResult {
            next_token: None,
            parameters: Some(Vec::new()),
        });
    }
    let mut filters = req.parameter_filters.clone().unwrap_or_default();
    for f in req.filters.iter().flatten() {
        filters.push(ParameterStringFilter {
            key: match f.key {
                ParametersFilterKey::Name => "Name",
                ParametersFilterKey::Type => "Type",
                ParametersFilterKey::KeyId => "KeyId",
            }
            .into(),
            option: Some(
                if f.key == ParametersFilterKey::Name {
                    "BeginsWith"
                } else {
                    "Equals"
                }
                .into(),
            ),
            values: Some(f.values.clone()),
        });
    }
    let size = req.max_results.unwrap_or(50) as usize;
    let start = token_start(req.next_token.as_deref())?;
    let matched = ssm.store.read(|conn| {
        let mut out = Vec::new();
        for v in all_current(conn, ctx)? {
            let tags = if filters.iter().any(|f| f.key.starts_with("tag:")) {
                tags_of(conn, &ctx.account, &ctx.region, &v.name)?.unwrap_or_default()
            } else {
                Vec::new()
            };
            let mut ok = true;
            for f in &filters {
                ok &= passes(&v, f, &tags)?;
            }
            if ok {
                out.push(metadata(ctx, &v));
            }
        }
        Ok(out)
    })?;
    let (page, token) = crate::paging::offset_page(matched, start, size, "ssm");
    Ok(DescribeParametersResult {
        next_token: token,
        parameters: Some(page),
    })
}

/// `GetParameterHistory`: every version kept, oldest first.
pub fn history(
    ssm: &Ssm,
    ctx: &Ctx,
    req: GetParameterHistoryRequest,
) -> ApiResult<GetParameterHistoryResult> {
    let decrypt = req.with_decryption.unwrap_or(false);
    let size = req.max_results.unwrap_or(50) as usize;
    let start = token_start(req.next_token.as_deref())?;
    let (page, token) = ssm.store.read(|conn| {
        let (v, r) = find(conn, ctx, &req.name)?;
        let (region, account) = scope(ctx, &r)?;
        let all = versions(conn, &account, &region, &v.name)?;
        let (page, token) = crate::paging::offset_page(all, start, size, "ssm");
        let page = page
            .iter()
            .map(|v| {
                Ok(ParameterHistory {
                    allowed_pattern: v.allowed_pattern.clone(),
                    data_type: Some(v.data_type.clone()),
                    description: v.description.clone(),
                    key_id: v.key_id.clone(),
                    labels: Some(v.labels.clone()),
                    last_modified_date: Some(millis_to_epoch(v.modified_at)),
                    last_modified_user: Some(v.modified_by.clone()),
                    name: Some(v.name.clone()),
                    policies: Some(Vec::new()),
                    tier: Some(v.tier),
                    r#type: Some(v.kind),
                    value: Some(ssm.value(conn, &account, &region, v, decrypt)?),
                    version: Some(v.version),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((page, token))
    })?;
    Ok(GetParameterHistoryResult {
        next_token: token,
        parameters: Some(page),
    })
}

/// The version a label call names (latest when none).
fn labelled_version(
    tx: &Connection,
    ctx: &Ctx,
    name: &str,
    version: Option<i64>,
) -> ApiResult<Vec<VersionRow>> {
    let all = versions(tx, &ctx.account, &ctx.region, name)?;
    if all.is_empty() {
        return Err(not_found());
    }
    if let Some(v) = version {
        if !all.iter().any(|x| x.version == v) {
            return Err(version_not_found(name, &Selector::Version(v)));
        }
    }
    Ok(all)
}

/// `LabelParameterVersion`: labels move to the version named (the latest
/// by default); invalid ones are listed, not applied.
pub fn label(
    ssm: &Ssm,
    ctx: &Ctx,
    req: LabelParameterVersionRequest,
) -> ApiResult<LabelParameterVersionResult> {
    let (version, invalid) = ssm.store.write(|tx| {
        let mut all = labelled_version(tx, ctx, &req.name, req.parameter_version)?;
        let target = req
            .parameter_version
            .unwrap_or_else(|| all.last().map_or(1, |v| v.version));
        let (valid, invalid): (Vec<String>, Vec<String>) =
            req.labels.iter().cloned().partition(|l| names::valid_label(l));
        for v in all.iter_mut() {
            let before = v.labels.len();
            if v.version == target {
                for l in &valid {
                    if !v.labels.contains(l) {
                        v.labels.push(l.clone());
                    }
                }
                if v.labels.len() > MAX_LABELS {
                    return Err(ApiError::new(
                        "ParameterVersionLabelLimitExceeded",
                        format!("A parameter version can have maximum {MAX_LABELS} labels. Move one or more labels to another version and try again."),
                    ));
                }
            } else {
                v.labels.retain(|l| !valid.contains(l));
            }
            if v.version == target || v.labels.len() != before {
                save_version(tx, &ctx.account, &ctx.region, v)?;
            }
        }
        Ok((target, invalid))
    })?;
    Ok(LabelParameterVersionResult {
        invalid_labels: Some(invalid),
        parameter_version: Some(version),
    })
}

/// `UnlabelParameterVersion`.
pub fn unlabel(
    ssm: &Ssm,
    ctx: &Ctx,
    req: UnlabelParameterVersionRequest,
) -> ApiResult<UnlabelParameterVersionResult> {
    let (removed, invalid) = ssm.store.write(|tx| {
        let all = labelled_version(tx, ctx, &req.name, Some(req.parameter_version))?;
        let mut v = all
            .into_iter()
            .find(|v| v.version == req.parameter_version)
            .expect("labelled_version checked it");
        let (removed, invalid): (Vec<String>, Vec<String>) = req
            .labels
            .iter()
            .cloned()
            .partition(|l| v.labels.contains(l));
        v.labels.retain(|l| !removed.contains(l));
        save_version(tx, &ctx.account, &ctx.region, &v)?;
        Ok((removed, invalid))
    })?;
    Ok(UnlabelParameterVersionResult {
        invalid_labels: Some(invalid),
        removed_labels: Some(removed),
    })
}

fn check_tags(tags: &[Tag]) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TooManyTagsError",
            format!("The resource can have at most {MAX_TAGS} tags."),
        ));
    }
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(validation(format!(
            "Tag key {} uses the reserved prefix aws:.",
            t.key
        )));
    }
    Ok(())
}

fn tagged_parameter(
    conn: &Connection,
    ctx: &Ctx,
    kind: ResourceTypeForTagging,
    id: &str,
) -> ApiResult<(String, Vec<Tag>)> {
    if kind != ResourceTypeForTagging::Parameter {
        return Err(ApiError::new(
            "InvalidResourceType",
            format!(
                "Berth's Systems Manager tags parameters only, not {}.",
                kind.as_str()
            ),
        ));
    }
    let name = names::reference(id)
        .and_then(|r| r.candidates.into_iter().next())
        .unwrap_or_else(|| id.to_string());
    match tags_of(conn, &ctx.account, &ctx.region, &name)? {
        Some(t) => Ok((name, t)),
        None => Err(ApiError::new(
            "InvalidResourceId",
            "The resource ID is not valid. Verify that the resource ID is correct and try again.",
        )),
    }
}

fn save_tags(tx: &Connection, ctx: &Ctx, name: &str, tags: &[Tag]) -> ApiResult<()> {
    tx.execute(
        "UPDATE ssm_parameters SET tags = ?4 WHERE account = ?1 AND region = ?2 AND name = ?3",
        params![
            ctx.account,
            ctx.region,
            name,
            serde_json::to_string(tags).expect("tags serialise")
        ],
    )?;
    Ok(())
}

/// `AddTagsToResource` (parameters).
pub fn add_tags(ssm: &Ssm, ctx: &Ctx, req: AddTagsToResourceRequest) -> ApiResult<Empty> {
    ssm.store.write(|tx| {
        let (name, mut tags) = tagged_parameter(tx, ctx, req.resource_type, &req.resource_id)?;
        for t in &req.tags {
            tags.retain(|o| o.key != t.key);
            tags.push(t.clone());
        }
        check_tags(&tags)?;
        save_tags(tx, ctx, &name, &tags)
    })?;
    Ok(Empty {})
}

/// `RemoveTagsFromResource` (parameters).
pub fn remove_tags(ssm: &Ssm, ctx: &Ctx, req: RemoveTagsFromResourceRequest) -> ApiResult<Empty> {
    ssm.store.write(|tx| {
        let (name, mut tags) = tagged_parameter(tx, ctx, req.resource_type, &req.resource_id)?;
        tags.retain(|t| !req.tag_keys.contains(&t.key));
        save_tags(tx, ctx, &name, &tags)
    })?;
    Ok(Empty {})
}

/// `ListTagsForResource` (parameters).
pub fn list_tags(
    ssm: &Ssm,
    ctx: &Ctx,
    req: ListTagsForResourceRequest,
) -> ApiResult<ListTagsForResourceResult> {
    let (_, tags) = ssm
        .store
        .read(|conn| tagged_parameter(conn, ctx, req.resource_type, &req.resource_id))?;
    Ok(ListTagsForResourceResult {
        tag_list: Some(tags),
    })
}
