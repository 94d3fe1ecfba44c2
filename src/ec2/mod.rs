//! Amazon EC2 (its own Query dialect, `Version=2016-11-15`): the subset Berth
//! serves.
//!
//! * `DescribeInstanceTypes` from Berth's instance-type catalog
//!   (`instance_types.rs`);
//! * launch templates and their versions (`launch_templates.rs`), stored per
//!   account and region;
//! * `DescribeInstances` and `TerminateInstances` over Berth's local
//!   container instances and the instances Auto Scaling launched
//!   (`instances.rs`);
//! * what user data tells the ECS agent (`user_data.rs`), for the code that
//!   starts instances from templates.
//!
//! Handlers take input already decoded by the wire layer (`wire/form.rs`, EC2 dialect)
//! and validated against `models/ec2-2016-11-15.json`, and return the output
//! shape as a JSON value. Errors carry EC2's codes (`InvalidInstanceType`,
//! `InvalidLaunchTemplateName.NotFoundException`, …) with HTTP 400.

pub mod instance_types;
pub mod instances;
pub mod launch_templates;
pub mod user_data;

use serde_json::Value;

use std::sync::Arc;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::events::Bus;
use crate::model;
use crate::store::Store;
use crate::wire::Service;

pub use user_data::ecs_config_from_user_data;

/// EC2's state: the store, the bus, and the instances other services launch.
pub struct Ec2 {
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub launched: Arc<dyn instances::LaunchedInstances>,
}

/// EC2 (the subset Berth serves), registered once in the request pipeline.
pub fn service(state: Arc<Ec2>) -> Service {
    Service::builder("EC2", "ec2", "ec2", model::ec2(), state)
        .op("DescribeInstances", |e: &Ec2, ctx: &Ctx, input: Value| {
            instances::describe(e, ctx, &input)
        })
        .op("TerminateInstances", |e: &Ec2, ctx: &Ctx, input: Value| {
            instances::terminate(e, ctx, &input)
        })
        .op("DescribeInstanceTypes", |_: &Ec2, _: &Ctx, input: Value| {
            instance_types::describe(&input)
        })
        .op(
            "CreateLaunchTemplate",
            |e: &Ec2, ctx: &Ctx, input: Value| launch_templates::create(&e.store, ctx, &input),
        )
        .op(
            "CreateLaunchTemplateVersion",
            |e: &Ec2, ctx: &Ctx, input: Value| {
                launch_templates::create_version(&e.store, ctx, &input)
            },
        )
        .op(
            "DescribeLaunchTemplates",
            |e: &Ec2, ctx: &Ctx, input: Value| launch_templates::describe(&e.store, ctx, &input),
        )
        .op(
            "DescribeLaunchTemplateVersions",
            |e: &Ec2, ctx: &Ctx, input: Value| {
                launch_templates::describe_versions(&e.store, ctx, &input)
            },
        )
        .op(
            "DeleteLaunchTemplate",
            |e: &Ec2, ctx: &Ctx, input: Value| launch_templates::delete(&e.store, ctx, &input),
        )
        .op(
            "ModifyLaunchTemplate",
            |e: &Ec2, ctx: &Ctx, input: Value| launch_templates::modify(&e.store, ctx, &input),
        )
        .precheck(validate)
        .validation_errors(validation_error)
        .build()
}

/// Model validation speaks ECS's error codes; EC2 answers a missing member
/// with `MissingParameter` and any other bad value with
/// `InvalidParameterValue`.
pub fn validation_error(e: ApiError) -> ApiError {
    if let Some(rest) = e.message.strip_prefix("Missing required parameter '") {
        let name = rest.trim_end_matches("'.");
        return ApiError::new(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        );
    }
    match e.code.as_str() {
        "InvalidParameterException" | "SerializationException" => {
            ApiError::new("InvalidParameterValue", e.message)
        }
        _ => e,
    }
}

/// Checks EC2 makes before the model's own, with EC2's error codes: a
/// launch template name anywhere in the request must be well formed, and
/// `CreateLaunchTemplate` needs some `LaunchTemplateData`.
pub fn validate(operation: &str, input: &Value) -> ApiResult<()> {
    // Empty data has no parameters on the wire; EC2 refuses it as missing.
    if operation == "CreateLaunchTemplate" && input.get("LaunchTemplateData").is_none() {
        return Err(ApiError::new(
            "MissingParameter",
            "No launch template data was provided. Launch template data is required to create a launch template.",
        ));
    }
    if let Some(name) = input.get("LaunchTemplateName").and_then(Value::as_str) {
        launch_templates::check_name(name)?;
    }
    for name in input
        .get("LaunchTemplateNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        launch_templates::check_name(name)?;
    }
    Ok(())
}

/// EC2's `InvalidParameterValue`.
pub fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterValue", message)
}

/// One `Filter.N` of a Describe call: a name and the values any of which
/// may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// The request's `Filters`.
pub fn filters(input: &Value) -> Vec<Filter> {
    input
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| Filter {
            name: f
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            values: f
                .get("Values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        })
        .collect()
}

/// EC2 filter value matching: `*` matches any run of characters, `?` one
/// character; everything else literally.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    crate::wildcard::matches(pattern, value)
}

/// Whether any of the filter's values matches `value` (wildcards allowed).
pub fn any_matches(filter: &Filter, value: &str) -> bool {
    filter.values.iter().any(|p| wildcard_match(p, value))
}

/// The page size: `MaxResults` (already bounded by the model) or `default`.
pub fn page_size(input: &Value, default: usize) -> usize {
    input
        .get("MaxResults")
        .and_then(Value::as_i64)
        .map_or(default, |n| n.max(1) as usize)
}

/// Where a page starts: the offset in `NextToken`, or 0.
pub fn page_start(input: &Value) -> ApiResult<usize> {
    match input.get("NextToken").and_then(Value::as_str) {
        None | Some("") => Ok(0),
        Some(t) => crate::paging::offset(t, "ec2").ok_or_else(|| {
            ApiError::new(
                "InvalidPaginationToken",
                format!("The pagination token '{t}' is not valid."),
            )
        }),
    }
}

/// One page of `items` from `start`, and the token for the next page.
pub fn page<T>(items: Vec<T>, start: usize, size: usize) -> (Vec<T>, Option<String>) {
    crate::paging::offset_page(items, start, size, "ec2")
}

pub use crate::clock::iso_time;

/// The caller's ARN as EC2 reports it in `CreatedBy`.
pub fn created_by(ctx: &Ctx) -> String {
    format!("arn:aws:iam::{}:root", ctx.account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("t3.*", "t3.micro"));
        assert!(wildcard_match("*.large", "m7g.large"));
        assert!(!wildcard_match("*.large", "m7g.xlarge"));
        assert!(wildcard_match("m?g.*", "m7g.large"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("c*g.*large", "c7g.2xlarge"));
        assert!(!wildcard_match("t3.micro", "t3.micro2"));
        assert!(wildcard_match("t3.micro", "t3.micro"));
    }

    #[test]
    fn paging_round_trip() {
        let items: Vec<u32> = (0..12).collect();
        let (p, t) = page(items.clone(), 0, 5);
        assert_eq!(p, vec![0, 1, 2, 3, 4]);
        let start = page_start(&json!({"NextToken": t.unwrap()})).unwrap();
        let (p, t) = page(items.clone(), start, 5);
        assert_eq!(p, vec![5, 6, 7, 8, 9]);
        let start = page_start(&json!({"NextToken": t.unwrap()})).unwrap();
        let (p, t) = page(items, start, 5);
        assert_eq!((p, t), (vec![10, 11], None));
        let e = page_start(&json!({"NextToken": "garbage"})).unwrap_err();
        assert_eq!(e.code, "InvalidPaginationToken");
    }

    #[test]
    fn times_are_iso() {
        assert_eq!(iso_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
