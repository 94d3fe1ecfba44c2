//! Account settings: PutAccountSetting, PutAccountSettingDefault,
//! ListAccountSettings, DeleteAccountSetting.
//!
//! A setting is kept per principal (a user, a role, or the account's root)
//! and region. The root's setting is the account's default: a principal
//! without its own takes the root's, and without that ECS's own default
//! (`aws_managed`). Where Berth has the feature the setting governs, it
//! takes effect: `containerInsights` is the setting new clusters get when
//! CreateCluster names none.

use rusqlite::{params, Connection, OptionalExtension};

use super::shapes::{
    DeleteAccountSettingRequest, DeleteAccountSettingResponse, ListAccountSettingsRequest,
    ListAccountSettingsResponse, PutAccountSettingDefaultRequest, PutAccountSettingDefaultResponse,
    PutAccountSettingRequest, PutAccountSettingResponse, Setting, SettingName, SettingType,
};
use super::Ecs;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::paging;

/// Every setting ECS documents, in the order ListAccountSettings lists
/// them.
pub const ALL: [SettingName; 11] = [
    SettingName::ServiceLongArnFormat,
    SettingName::TaskLongArnFormat,
    SettingName::ContainerInstanceLongArnFormat,
    SettingName::AwsvpcTrunking,
    SettingName::ContainerInsights,
    SettingName::FargateFIPSMode,
    SettingName::TagResourceAuthorization,
    SettingName::FargateTaskRetirementWaitPeriod,
    SettingName::GuardDutyActivate,
    SettingName::DefaultLogDriverMode,
    SettingName::FargateEventWindows,
];

/// ECS's own default for a setting nobody in the account has set.
pub fn aws_default(name: SettingName) -> &'static str {
    match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat => "enabled",
        SettingName::TagResourceAuthorization => "on",
        SettingName::FargateTaskRetirementWaitPeriod => "7",
        SettingName::DefaultLogDriverMode => "blocking",
        SettingName::AwsvpcTrunking
        | SettingName::ContainerInsights
        | SettingName::FargateFIPSMode
        | SettingName::GuardDutyActivate
        | SettingName::FargateEventWindows => "disabled",
    }
}

/// The values a setting takes.
fn values(name: SettingName) -> &'static [&'static str] {
    match name {
        SettingName::ContainerInsights => &["enabled", "disabled", "enhanced"],
        SettingName::TagResourceAuthorization => &["on", "off"],
        SettingName::FargateTaskRetirementWaitPeriod => &["0", "7", "14"],
        SettingName::DefaultLogDriverMode => &["blocking", "non-blocking"],
        _ => &["enabled", "disabled"],
    }
}

/// ECS's checks of a value to set.
fn check_value(name: SettingName, value: &str) -> ApiResult<()> {
    match name {
        SettingName::GuardDutyActivate => Err(ApiError::invalid_parameter(
            "guardDutyActivate is read-only: it shows whether GuardDuty Runtime Monitoring is turned on for the account.",
        )),
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat
            if value == "disabled" =>
        {
            Err(ApiError::invalid_parameter(format!(
                "The long ARN format can no longer be turned off: {} accepts only enabled.",
                name.as_str()
            )))
        }
        _ if values(name).contains(&value) => Ok(()),
        _ => Err(ApiError::invalid_parameter(format!(
            "Invalid value '{value}' for the {} setting. Valid values are: {}.",
            name.as_str(),
            values(name).join(", ")
        ))),
    }
}

/// The account's root ARN: where the account default is kept.
fn root(ctx: &Ctx) -> String {
    format!("arn:aws:iam::{}:root", ctx.account)
}

/// The principal a call names (the caller when it names none), checked to
/// be an IAM principal of the caller's account.
fn principal(ctx: &Ctx, given: Option<&str>) -> ApiResult<String> {
    let Some(p) = given else {
        return Ok(ctx.principal_arn.clone());
    };
    let prefix = format!("arn:aws:iam::{}:", ctx.account);
    let ok = p.strip_prefix(&prefix).is_some_and(|rest| {
        rest == "root"
            || rest
                .strip_prefix("user/")
                .or_else(|| rest.strip_prefix("role/"))
                .is_some_and(|n| !n.is_empty())
    });
    if !ok {
        return Err(ApiError::invalid_parameter(format!(
            "principalArn '{p}' is not a user, role or root ARN of account {}.",
            ctx.account
        )));
    }
    Ok(p.to_string())
}

fn stored(
    conn: &Connection,
    ctx: &Ctx,
    principal: &str,
    name: SettingName,
) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT value FROM account_settings WHERE region = ?1 AND principal_arn = ?2 AND name = ?3",
        )?
        .query_row(params![ctx.region, principal, name.as_str()], |r| r.get(0))
        .optional()?)
}

/// A principal's effective setting: its own, else the account default,
/// else ECS's.
pub fn effective(
    conn: &Connection,
    ctx: &Ctx,
    principal: &str,
    name: SettingName,
) -> ApiResult<Setting> {
    let root = root(ctx);
    if let Some(v) = stored(conn, ctx, principal, name)? {
        return Ok(setting(name, v, principal, SettingType::User));
    }
    if let Some(v) = stored(conn, ctx, &root, name)? {
        return Ok(setting(name, v, &root, SettingType::User));
    }
    Ok(setting(
        name,
        aws_default(name).into(),
        &root,
        SettingType::AwsManaged,
    ))
}

/// The value of a setting for the caller of `ctx`.
pub fn value_for(conn: &Connection, ctx: &Ctx, name: SettingName) -> ApiResult<String> {
    Ok(effective(conn, ctx, &ctx.principal_arn, name)?
        .value
        .unwrap_or_default())
}

fn setting(name: SettingName, value: String, principal: &str, t: SettingType) -> Setting {
    Setting {
        name: Some(name),
        value: Some(value),
        principal_arn: Some(principal.to_string()),
        r#type: Some(t),
    }
}

fn put(
    conn: &Connection,
    ctx: &Ctx,
    principal: &str,
    name: SettingName,
    value: &str,
) -> ApiResult<Setting> {
    check_value(name, value)?;
    conn.prepare_cached(
        "INSERT INTO account_settings (region, principal_arn, name, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (region, principal_arn, name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![ctx.region, principal, name.as_str(), value])?;
    Ok(setting(name, value.into(), principal, SettingType::User))
}

impl Ecs {
    pub(super) fn put_account_setting(
        &self,
        ctx: &Ctx,
        req: PutAccountSettingRequest,
    ) -> ApiResult<PutAccountSettingResponse> {
        let who = principal(ctx, req.principal_arn.as_deref())?;
        let s = self
            .store
            .write(|tx| put(tx, ctx, &who, req.name, &req.value))?;
        Ok(PutAccountSettingResponse { setting: Some(s) })
    }

    pub(super) fn put_account_setting_default(
        &self,
        ctx: &Ctx,
        req: PutAccountSettingDefaultRequest,
    ) -> ApiResult<PutAccountSettingDefaultResponse> {
        let s = self
            .store
            .write(|tx| put(tx, ctx, &root(ctx), req.name, &req.value))?;
        Ok(PutAccountSettingDefaultResponse { setting: Some(s) })
    }

    pub(super) fn delete_account_setting(
        &self,
        ctx: &Ctx,
        req: DeleteAccountSettingRequest,
    ) -> ApiResult<DeleteAccountSettingResponse> {
        let who = principal(ctx, req.principal_arn.as_deref())?;
        // Deleting what is not set changes nothing and is no error: the
        // answer is the setting the principal has from then on.
        self.store.write(|tx| {
            tx.prepare_cached(
                "DELETE FROM account_settings WHERE region = ?1 AND principal_arn = ?2 AND name = ?3",
            )?
            .execute(params![ctx.region, who, req.name.as_str()])?;
            Ok(DeleteAccountSettingResponse {
                setting: Some(effective(tx, ctx, &who, req.name)?),
            })
        })
    }

    pub(super) fn list_account_settings(
        &self,
        ctx: &Ctx,
        req: ListAccountSettingsRequest,
    ) -> ApiResult<ListAccountSettingsResponse> {
        if req.value.is_some() && req.name.is_none() {
            return Err(ApiError::invalid_parameter(
                "The value parameter can only be used together with the name parameter.",
            ));
        }
        let size = paging::page_size(req.max_results, 10)?;
        let start = match &req.next_token {
            Some(t) => paging::offset(t, "accountSettings")
                .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken."))?,
            None => 0,
        };
        let who = principal(ctx, req.principal_arn.as_deref())?;
        let names: Vec<SettingName> = ALL
            .into_iter()
            .filter(|n| req.name.is_none_or(|x| x == *n))
            .collect();
        let settings = self.store.read(|conn| {
            let mut out = Vec::new();
            for name in names {
                let s = if req.effective_settings == Some(true) {
                    Some(effective(conn, ctx, &who, name)?)
                } else {
                    stored(conn, ctx, &who, name)?
                        .map(|v| setting(name, v, &who, SettingType::User))
                };
                out.extend(s.filter(|s| req.value.is_none() || s.value == req.value));
            }
            Ok(out)
        })?;
        let (page, token) = paging::offset_page(settings, start, size, "accountSettings");
        Ok(ListAccountSettingsResponse {
            settings: Some(page),
            next_token: token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_a_value_the_setting_takes() {
        for n in ALL {
            if n != SettingName::GuardDutyActivate {
                assert!(values(n).contains(&aws_default(n)), "{n:?}");
            }
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(check_value(SettingName::ContainerInsights, "enhanced").is_ok());
        assert!(check_value(SettingName::ContainerInsights, "on").is_err());
        assert!(check_value(SettingName::FargateTaskRetirementWaitPeriod, "3").is_err());
        assert!(check_value(SettingName::GuardDutyActivate, "enabled").is_err());
        assert!(check_value(SettingName::TaskLongArnFormat, "disabled").is_err());
    }
}
