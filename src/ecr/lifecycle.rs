//! # ECR lifecycle policies: parsing, validation and evaluation
//!
//! A pure engine: no IO, no clock (the caller passes `now_ms`), no database.
//! [`parse`] validates the `lifecyclePolicyText` of `PutLifecyclePolicy` /
//! `StartLifecyclePolicyPreview` and [`evaluate`] decides which images a
//! policy expires. [`preview`] returns the same decision shaped like ECR's
//! `LifecyclePolicyPreviewResult`, and [`upcoming`] lists what each rule
//! would expire next, for listing tools.
//!
//! ## Sources
//!
//! Everything below follows the Amazon ECR User Guide pages "Lifecycle policy
//! properties", "Examples of lifecycle policies" and "How lifecycle policies
//! work → Lifecycle policy evaluation rules", plus the ECR API reference for
//! `PutLifecyclePolicy`, `LifecyclePolicyPreviewResult` and
//! `LifecyclePolicyRuleAction`. Quotes are marked `[doc]`.
//!
//! ## Policy document
//!
//! ```json
//! {"rules": [{
//!     "rulePriority": 1,
//!     "description": "optional",
//!     "selection": {
//!         "tagStatus": "tagged" | "untagged" | "any",
//!         "tagPrefixList": ["prod"],        // tagged only, or:
//!         "tagPatternList": ["prod*"],      // tagged only
//!         "countType": "imageCountMoreThan" | "sinceImagePushed",
//!         "countUnit": "days",              // sinceImagePushed only
//!         "countNumber": 14
//!     },
//!     "action": {"type": "expire"}
//! }]}
//! ```
//!
//! ## Validation ([`parse`])
//!
//! Messages use ECR's wire format,
//! `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint:
//! 'Lifecycle policy validation failure: <detail>'`. Where ECR's own wording
//! is known it is used verbatim: the JSON-schema phrasing ("object has
//! missing required properties", "object instance has properties which are
//! not allowed by the schema", "instance value (..) not found in enum",
//! "numeric instance is lower than the required minimum", "Could not map
//! policyString into LifecyclePolicy."), and the semantic errors "Must
//! specify tagPrefixList or tagPatternList when tagStatus=TAGGED", "Only one
//! rule can select Untagged images", "Rule for tagStatus=ANY must have the
//! lowest priority". Berth adds a JSON pointer (`(at /rules/0/selection)`)
//! or the rule priorities involved, so the user can find the problem.
//!
//! * Length: the API model gives `lifecyclePolicyText` "Minimum length of
//!   100. Maximum length of 30720" (also the "Lifecycle policy length" quota:
//!   "The maximum number of characters in a lifecycle policy").
//! * Unknown properties are refused at every level (ECR validates against a
//!   closed JSON schema).
//! * `rulePriority`: integer >= 1; `[doc]` "you must give them each a unique
//!   value for rulePriority. Values don't need to be sequential".
//! * `tagStatus`: `[doc]` "If you specify tagged, then you must also specify
//!   a tagPrefixList value or a tagPatternList value. If you specify
//!   untagged, then you must omit both tagPrefixList and tagPatternList."
//!   and "A lifecycle policy rule may specify either tagPatternList or
//!   tagPrefixList, but not both." The same omission applies to `any`.
//! * `tagPatternList`: `[doc]` "There is a maximum limit of four wildcards
//!   (*) per string. For example, ["*test*1*2*3", "test*1*2*3*"] is valid but
//!   ["test*1*2*3*4*5*6"] is invalid."
//! * `[doc]` "A rule with a tagStatus value of any must have the highest
//!   value for rulePriority and be evaluated last." (so at most one `any`).
//! * `[doc]` "Only one rule is allowed to select untagged images."
//! * `countUnit`: `[doc]` "Required: yes, only if countType is set to
//!   sinceImagePushed" and "an error will occur if you specify a count unit
//!   when countType is any other value"; the only unit is `days`.
//! * `countNumber`: `[doc]` "Acceptable values are positive integers (0 is
//!   not an accepted value)".
//! * `action.type`: `[doc]` "The supported value is expire".
//! * Newer ECR features that need the archive storage class
//!   (`countType` `sinceImagePulled` / `sinceImageTransitioned`, action
//!   `transition`, `targetStorageClass`, `storageClass: "archive"`) are
//!   refused with a "not supported by this registry" message;
//!   `"storageClass": "standard"` is accepted and changes nothing, since every
//!   Berth image is in the standard class.
//!
//! ## Evaluation ([`evaluate`])
//!
//! The "Lifecycle policy evaluation rules" of the user guide, and how each is
//! implemented:
//!
//! 1. `[doc]` "All rules are evaluated at the same time, regardless of rule
//!    priority. After all rules are evaluated, they are then applied based on
//!    rule priority." Every rule computes its selection on the full image
//!    list; the results are then applied lowest `rulePriority` first.
//! 2. Tag matching. `untagged` selects images with no tags, `any` selects all
//!    images, `tagged` selects images with at least one tag that satisfy the
//!    list. `[doc]` "When using the tagPrefixList, an image is successfully
//!    matched if *all* of the tags in the tagPrefixList value are matched
//!    against any of the image's tags." The same AND holds for
//!    tagPatternList: `[doc]` "If you specify multiple tags, only the images
//!    with all specified tags are selected." A prefix matches a tag that
//!    starts with it; a pattern must match the whole tag, `*` standing for
//!    any run of characters, the empty run included (`prod*` selects `prod`,
//!    `prod1`, `prod2`). Matching is case-sensitive, as tags are.
//! 3. `[doc]` "With countType = imageCountMoreThan, images are sorted from
//!    youngest to oldest based on pushed_at_time and then all images greater
//!    than the specified count are expired."
//! 4. `[doc]` "With countType = sinceImagePushed, all images whose
//!    pushed_at_time is older than the specified number of days based on
//!    countNumber are expired." "Older than" is strict:
//!    `now_ms - pushed_at_ms > countNumber * 86_400_000`. In the docs' "all
//!    images" example B an untagged image pushed exactly one day ago is not
//!    expired by a one-day rule.
//! 5. `[doc]` "An image that matches the tagging requirements of a rule
//!    cannot be expired by a rule with a lower priority." So each image is
//!    owned by the first rule, in priority order, whose tag filter it
//!    matches. Only that rule may expire it, even when the owning rule's
//!    count or age criterion keeps it. In the docs' "all images" example B,
//!    the `any` rule "can't mark images A, B, C, or E because they were
//!    identified by higher priority rules", though C and E were kept by them.
//! 6. `[doc]` "Rules can never mark images that are marked by higher priority
//!    rules, but can still identify them as if they haven't been expired."
//!    Images matched (or expired) by a higher-priority rule still count
//!    toward a lower rule's `imageCountMoreThan` window. They are skipped, not
//!    replaced: in "multiple rules" example A, rule 2 (`beta`, keep 1) "marks
//!    both Image A and Image B", both are skipped, and only A expires, by
//!    rule 1.
//! 7. `[doc]` "An image is expired by exactly one or zero rules." This follows
//!    from 5: an image has at most one owning rule.
//! 8. `[doc]` "Expiration is always ordered by pushed_at_time, and always
//!    expires older images before newer ones." Images with equal
//!    `pushed_at_ms` are ordered by digest, so the order is total and the
//!    result deterministic: youngest-first means (pushed_at desc, digest
//!    desc), oldest-first the reverse.
//!
//! Output order of [`evaluate`]: rule priority, then `pushed_at_ms`, then
//! digest (all ascending).
//!
//! The user guide also says "The set of rules must contain a unique set of
//! tag prefixes". ECR has no known error message for this and rule 5 already
//! makes a repeated prefix set harmless (the later rule can expire nothing),
//! so it is not enforced: refusing it could reject policies that AWS accepts.
//!
//! ## Cost
//!
//! For `n` images and `r` rules: one sort of the images (`O(n log n)`), then
//! for each rule one pass over the images (`O(r · n · tags · filters)`). No
//! step is quadratic in `n`.

use std::fmt;

use serde_json::{Map, Value};

/// Minimum length of `lifecyclePolicyText`, in characters (ECR API model).
pub const POLICY_TEXT_MIN_CHARS: usize = 100;
/// Maximum length of `lifecyclePolicyText`, in characters (ECR API model and
/// the "Lifecycle policy length" service quota).
pub const POLICY_TEXT_MAX_CHARS: usize = 30_720;
/// Maximum number of `*` wildcards in one `tagPatternList` entry.
pub const MAX_WILDCARDS_PER_PATTERN: usize = 4;
/// Milliseconds in one `countUnit` day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Largest accepted `rulePriority` / `countNumber` (ECR models them as
/// 32-bit integers).
const MAX_INT32: i64 = i32::MAX as i64;

const CONSTRAINT_PREFIX: &str =
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: ";
const VALIDATION_PREFIX: &str = "Lifecycle policy validation failure: ";
const CANNOT_MAP: &str = "Could not map policyString into LifecyclePolicy.";

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// Which images a rule looks at (`selection.tagStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagStatus {
    /// Images with at least one tag that satisfies the prefix or pattern list.
    Tagged,
    /// Images without any tag.
    Untagged,
    /// Every image.
    Any,
}

impl TagStatus {
    /// The policy-document spelling (`tagged`, `untagged`, `any`).
    pub fn as_str(self) -> &'static str {
        match self {
            TagStatus::Tagged => "tagged",
            TagStatus::Untagged => "untagged",
            TagStatus::Any => "any",
        }
    }
}

/// How a rule picks, among the images it selects, those to expire
/// (`selection.countType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountType {
    /// Keep the `countNumber` youngest images, expire the rest.
    ImageCountMoreThan,
    /// Expire images pushed more than `countNumber` days ago.
    SinceImagePushed,
}

impl CountType {
    /// The policy-document spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CountType::ImageCountMoreThan => "imageCountMoreThan",
            CountType::SinceImagePushed => "sinceImagePushed",
        }
    }
}

/// Unit of `countNumber` for [`CountType::SinceImagePushed`]
/// (`selection.countUnit`); ECR knows only days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountUnit {
    /// `"days"`.
    Days,
}

/// What a rule does to the images it picks (`action.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// Delete the image (`"expire"` in the policy, `EXPIRE` in the API).
    Expire,
}

impl ActionType {
    /// The spelling used in the policy document (`expire`).
    pub fn policy_name(self) -> &'static str {
        match self {
            ActionType::Expire => "expire",
        }
    }

    /// The spelling used by the API's `LifecyclePolicyRuleAction.type`
    /// (`EXPIRE`).
    pub fn api_name(self) -> &'static str {
        match self {
            ActionType::Expire => "EXPIRE",
        }
    }
}

/// The `selection` object of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `tagStatus`.
    pub tag_status: TagStatus,
    /// `tagPrefixList`; empty unless `tag_status` is [`TagStatus::Tagged`].
    pub tag_prefix_list: Vec<String>,
    /// `tagPatternList`; empty unless `tag_status` is [`TagStatus::Tagged`].
    pub tag_pattern_list: Vec<String>,
    /// `countType`.
    pub count_type: CountType,
    /// `countUnit`; `Some` exactly when `count_type` is
    /// [`CountType::SinceImagePushed`].
    pub count_unit: Option<CountUnit>,
    /// `countNumber`, at least 1: the number of images to keep, or the
    /// age limit in days.
    pub count_number: u32,
}

/// One rule of a lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `rulePriority`: unique within the policy; lower numbers apply first.
    pub rule_priority: i64,
    /// `description`, if any.
    pub description: Option<String>,
    /// `selection`.
    pub selection: Selection,
    /// `action.type`.
    pub action: ActionType,
}

/// A validated lifecycle policy. [`parse`] returns the rules sorted by
/// `rule_priority` (ascending), the order in which they apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The rules, lowest `rule_priority` first.
    pub rules: Vec<Rule>,
}

/// What the engine needs to know about one image of the repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageFacts {
    /// The manifest digest (`sha256:...`), which identifies the image.
    pub digest: String,
    /// The image's tags; empty for an untagged image.
    pub tags: Vec<String>,
    /// When the image was pushed, in milliseconds since the Unix epoch.
    pub pushed_at_ms: i64,
}

/// One image that the policy expires, and the rule that expires it
/// (`appliedRulePriority` in ECR's preview results).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// Digest of the expired image.
    pub digest: String,
    /// `rulePriority` of the rule that expires it.
    pub rule_priority: i64,
}

/// One entry of a lifecycle policy preview, shaped like ECR's
/// `LifecyclePolicyPreviewResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewResult {
    /// `imageDigest`.
    pub image_digest: String,
    /// `imageTags`.
    pub image_tags: Vec<String>,
    /// `imagePushedAt`, in milliseconds since the Unix epoch.
    pub image_pushed_at_ms: i64,
    /// `action.type`, always [`ActionType::Expire`] today.
    pub action: ActionType,
    /// `appliedRulePriority`.
    pub applied_rule_priority: i64,
}

/// When an image that a rule does not expire yet will be expired by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryTrigger {
    /// A `sinceImagePushed` rule will expire the image from this instant on
    /// (milliseconds since the Unix epoch).
    AtTime {
        /// First instant at which the image is older than the rule's limit.
        at_ms: i64,
    },
    /// An `imageCountMoreThan` rule will expire the image once this many
    /// newer images that match the rule's tag filter have been pushed.
    AfterPushes {
        /// Number of further matching pushes.
        pushes: u32,
    },
}

/// An image that a rule will expire later, as listed by [`upcoming`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpcomingExpiry {
    /// Digest of the image.
    pub digest: String,
    /// `rulePriority` of the rule that will expire it.
    pub rule_priority: i64,
    /// What will trigger the expiry.
    pub trigger: ExpiryTrigger,
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

/// Parses and validates a lifecycle policy document the way ECR's
/// `PutLifecyclePolicy` does.
///
/// On failure the `Err` string is the full message for an
/// `InvalidParameterException`, e.g. `Invalid parameter at
/// 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy
/// validation failure: Only one rule can select Untagged images (...)'`.
/// On success the rules are sorted by `rulePriority`.
pub fn parse(text: &str) -> Result<Policy, String> {
    let chars = text.chars().count();
    if chars < POLICY_TEXT_MIN_CHARS {
        return Err(format!(
            "{CONSTRAINT_PREFIX}'Member must have length greater than or equal to \
             {POLICY_TEXT_MIN_CHARS}'"
        ));
    }
    if chars > POLICY_TEXT_MAX_CHARS {
        return Err(format!(
            "{CONSTRAINT_PREFIX}'Member must have length less than or equal to \
             {POLICY_TEXT_MAX_CHARS}'"
        ));
    }

    let root: Value = serde_json::from_str(text).map_err(|_| fail(CANNOT_MAP))?;
    let Value::Object(root) = &root else {
        return Err(fail(CANNOT_MAP));
    };
    check_properties(root, "", &["rules"], &["rules"])?;
    let rules_value = required(root, "rules", "")?;
    let Value::Array(items) = rules_value else {
        return Err(type_error(rules_value, "array", "/rules"));
    };
    if items.is_empty() {
        return Err(fail(format_args!(
            "array is too short: must have at least 1 elements but instance has 0 elements{}",
            at("/rules")
        )));
    }

    let mut rules = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        rules.push(parse_rule(item, &format!("/rules/{index}"))?);
    }
    rules.sort_by_key(|rule| rule.rule_priority);
    check_rule_set(&rules)?;
    Ok(Policy { rules })
}

/// Wraps a validation detail in ECR's `InvalidParameterException` message.
fn fail(detail: impl fmt::Display) -> String {
    format!("{CONSTRAINT_PREFIX}'{VALIDATION_PREFIX}{detail}'")
}

/// The location suffix appended to located validation details.
fn at(pointer: &str) -> String {
    if pointer.is_empty() {
        " (at /)".to_owned()
    } else {
        format!(" (at {pointer})")
    }
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{key}")
}

/// Formats names as a JSON array, the way the schema validator lists them.
fn json_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names
        .into_iter()
        .map(|name| Value::String(name.to_owned()).to_string())
        .collect();
    format!("[{}]", quoted.join(","))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(value: &Value, allowed: &str, pointer: &str) -> String {
    fail(format_args!(
        "instance type ({}) does not match any allowed primitive type (allowed: [\"{allowed}\"]){}",
        type_name(value),
        at(pointer)
    ))
}

fn enum_error(value: &Value, possible: &[&str], pointer: &str) -> String {
    fail(format_args!(
        "instance value ({value}) not found in enum (possible values: {}){}",
        json_names(possible.iter().copied()),
        at(pointer)
    ))
}

fn as_object<'a>(value: &'a Value, pointer: &str) -> Result<&'a Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(type_error(other, "object", pointer)),
    }
}

/// Refuses missing required properties, then properties outside `allowed`.
fn check_properties(
    object: &Map<String, Value>,
    pointer: &str,
    required_keys: &[&str],
    allowed: &[&str],
) -> Result<(), String> {
    let mut missing: Vec<&str> = required_keys
        .iter()
        .copied()
        .filter(|key| !object.contains_key(*key))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(fail(format_args!(
            "object has missing required properties ({}){}",
            json_names(missing),
            at(pointer)
        )));
    }
    let mut unknown: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|key| !allowed.contains(key))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(fail(format_args!(
            "object instance has properties which are not allowed by the schema: ({}){}",
            json_names(unknown),
            at(pointer)
        )));
    }
    Ok(())
}

fn required<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    pointer: &str,
) -> Result<&'a Value, String> {
    object.get(key).ok_or_else(|| {
        fail(format_args!(
            "object has missing required properties ({}){}",
            json_names([key]),
            at(pointer)
        ))
    })
}

fn string_value<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(type_error(other, "string", pointer)),
    }
}

fn integer_in(value: &Value, pointer: &str, min: i64, max: i64) -> Result<i64, String> {
    let Value::Number(number) = value else {
        return Err(type_error(value, "integer", pointer));
    };
    let found = match (number.as_i64(), number.as_u64()) {
        (Some(i), _) => i128::from(i),
        (None, Some(u)) => i128::from(u),
        (None, None) => return Err(type_error(value, "integer", pointer)),
    };
    if found < i128::from(min) {
        return Err(fail(format_args!(
            "numeric instance is lower than the required minimum (minimum: {min}, found: {found}){}",
            at(pointer)
        )));
    }
    if found > i128::from(max) {
        return Err(fail(format_args!(
            "numeric instance is greater than the required maximum (maximum: {max}, found: {found}){}",
            at(pointer)
        )));
    }
    i64::try_from(found).map_err(|_| type_error(value, "integer", pointer))
}

fn string_list(value: &Value, pointer: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(type_error(value, "array", pointer));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            string_value(item, &child(pointer, &index.to_string())).map(str::to_owned)
        })
        .collect()
}

fn unsupported(what: impl fmt::Display, pointer: &str) -> String {
    fail(format_args!(
        "{what} is not supported by this registry (the archive storage class is not available){}",
        at(pointer)
    ))
}

fn parse_rule(value: &Value, pointer: &str) -> Result<Rule, String> {
    let object = as_object(value, pointer)?;
    check_properties(
        object,
        pointer,
        &["action", "rulePriority", "selection"],
        &["action", "description", "rulePriority", "selection"],
    )?;

    let priority_pointer = child(pointer, "rulePriority");
    let rule_priority = integer_in(
        required(object, "rulePriority", pointer)?,
        &priority_pointer,
        1,
        MAX_INT32,
    )?;

    let description = match object.get("description") {
        None => None,
        Some(value) => Some(string_value(value, &child(pointer, "description"))?.to_owned()),
    };

    let selection = parse_selection(
        required(object, "selection", pointer)?,
        &child(pointer, "selection"),
    )?;
    let action = parse_action(
        required(object, "action", pointer)?,
        &child(pointer, "action"),
    )?;

    Ok(Rule {
        rule_priority,
        description,
        selection,
        action,
    })
}

fn parse_selection(value: &Value, pointer: &str) -> Result<Selection, String> {
    let object = as_object(value, pointer)?;
    check_properties(
        object,
        pointer,
        &["countNumber", "countType", "tagStatus"],
        &[
            "countNumber",
            "countType",
            "countUnit",
            "storageClass",
            "tagPatternList",
            "tagPrefixList",
            "tagStatus",
        ],
    )?;

    let status_pointer = child(pointer, "tagStatus");
    let status_value = required(object, "tagStatus", pointer)?;
    let tag_status = match string_value(status_value, &status_pointer)? {
        "tagged" => TagStatus::Tagged,
        "untagged" => TagStatus::Untagged,
        "any" => TagStatus::Any,
        _ => {
            return Err(enum_error(
                status_value,
                &["any", "tagged", "untagged"],
                &status_pointer,
            ))
        }
    };

    let type_pointer = child(pointer, "countType");
    let type_value = required(object, "countType", pointer)?;
    let count_type = match string_value(type_value, &type_pointer)? {
        "imageCountMoreThan" => CountType::ImageCountMoreThan,
        "sinceImagePushed" => CountType::SinceImagePushed,
        other @ ("sinceImagePulled" | "sinceImageTransitioned") => {
            return Err(unsupported(
                format_args!("countType \"{other}\""),
                &type_pointer,
            ))
        }
        _ => {
            return Err(enum_error(
                type_value,
                &["imageCountMoreThan", "sinceImagePushed"],
                &type_pointer,
            ))
        }
    };

    let count_unit = match object.get("countUnit") {
        None => None,
        Some(unit_value) => {
            let unit_pointer = child(pointer, "countUnit");
            match string_value(unit_value, &unit_pointer)? {
                "days" => Some(CountUnit::Days),
                _ => return Err(enum_error(unit_value, &["days"], &unit_pointer)),
            }
        }
    };

    let number_pointer = child(pointer, "countNumber");
    let count_number = integer_in(
        required(object, "countNumber", pointer)?,
        &number_pointer,
        1,
        MAX_INT32,
    )?;
    let count_number = u32::try_from(count_number).map_err(|_| {
        fail(format_args!(
            "numeric instance is greater than the required maximum (maximum: {MAX_INT32}, found: {count_number}){}",
            at(&number_pointer)
        ))
    })?;

    let tag_prefix_list = match object.get("tagPrefixList") {
        None => Vec::new(),
        Some(list) => string_list(list, &child(pointer, "tagPrefixList"))?,
    };
    let tag_pattern_list = match object.get("tagPatternList") {
        None => Vec::new(),
        Some(list) => string_list(list, &child(pointer, "tagPatternList"))?,
    };

    if let Some(class_value) = object.get("storageClass") {
        let class_pointer = child(pointer, "storageClass");
        match string_value(class_value, &class_pointer)? {
            "standard" => {}
            "archive" => {
                return Err(unsupported("storageClass \"archive\"", &class_pointer));
            }
            _ => {
                return Err(enum_error(
                    class_value,
                    &["archive", "standard"],
                    &class_pointer,
                ))
            }
        }
    }

    // Tag filters.
    let has_prefixes = object.contains_key("tagPrefixList");
    let has_patterns = object.contains_key("tagPatternList");
    match tag_status {
        TagStatus::Tagged => {
            if has_prefixes && has_patterns {
                return Err(fail(format_args!(
                    "A rule may specify either tagPrefixList or tagPatternList, but not both{}",
                    at(pointer)
                )));
            }
            if tag_prefix_list.is_empty() && tag_pattern_list.is_empty() {
                return Err(fail(format_args!(
                    "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED{}",
                    at(pointer)
                )));
            }
        }
        TagStatus::Untagged | TagStatus::Any => {
            if has_prefixes || has_patterns {
                return Err(fail(format_args!(
                    "tagPrefixList and tagPatternList may only be used when tagStatus is tagged \
                     (found tagStatus={}){}",
                    tag_status.as_str(),
                    at(pointer)
                )));
            }
        }
    }
    for (index, pattern) in tag_pattern_list.iter().enumerate() {
        let wildcards = pattern.matches('*').count();
        if wildcards > MAX_WILDCARDS_PER_PATTERN {
            return Err(fail(format_args!(
                "tagPatternList entry {} has {wildcards} wildcards; there is a maximum limit of \
                 four wildcards (*) per string{}",
                Value::String(pattern.clone()),
                at(&format!("{pointer}/tagPatternList/{index}"))
            )));
        }
    }

    // Count unit.
    match (count_type, count_unit) {
        (CountType::SinceImagePushed, None) => {
            return Err(fail(format_args!(
                "countUnit is required when countType is sinceImagePushed{}",
                at(pointer)
            )));
        }
        (CountType::ImageCountMoreThan, Some(_)) => {
            return Err(fail(format_args!(
                "countUnit must only be specified when countType is sinceImagePushed{}",
                at(pointer)
            )));
        }
        _ => {}
    }

    Ok(Selection {
        tag_status,
        tag_prefix_list,
        tag_pattern_list,
        count_type,
        count_unit,
        count_number,
    })
}

fn parse_action(value: &Value, pointer: &str) -> Result<ActionType, String> {
    let object = as_object(value, pointer)?;
    check_properties(object, pointer, &["type"], &["targetStorageClass", "type"])?;
    let type_pointer = child(pointer, "type");
    let type_value = required(object, "type", pointer)?;
    let action = match string_value(type_value, &type_pointer)? {
        "expire" => ActionType::Expire,
        "transition" => {
            return Err(unsupported("action type \"transition\"", &type_pointer));
        }
        _ => return Err(enum_error(type_value, &["expire"], &type_pointer)),
    };
    if object.contains_key("targetStorageClass") {
        return Err(unsupported(
            "targetStorageClass",
            &child(pointer, "targetStorageClass"),
        ));
    }
    Ok(action)
}

/// Checks that involve several rules. `rules` is sorted by priority.
fn check_rule_set(rules: &[Rule]) -> Result<(), String> {
    for pair in rules.windows(2) {
        if let [first, second] = pair {
            if first.rule_priority == second.rule_priority {
                return Err(fail(format_args!(
                    "Rule priorities must be unique (rulePriority {} is used by more than one rule)",
                    first.rule_priority
                )));
            }
        }
    }

    let mut untagged = rules
        .iter()
        .filter(|rule| rule.selection.tag_status == TagStatus::Untagged);
    if let (Some(first), Some(second)) = (untagged.next(), untagged.next()) {
        return Err(fail(format_args!(
            "Only one rule can select Untagged images (rulePriority {} and {} both use \
             tagStatus=untagged)",
            first.rule_priority, second.rule_priority
        )));
    }

    if let Some(position) = rules
        .iter()
        .position(|rule| rule.selection.tag_status == TagStatus::Any)
    {
        if let (Some(any_rule), Some(last)) = (rules.get(position), rules.last()) {
            if position + 1 != rules.len() {
                return Err(fail(format_args!(
                    "Rule for tagStatus=ANY must have the lowest priority, that is the highest \
                     rulePriority (rulePriority {} uses tagStatus=any but rulePriority {} is higher)",
                    any_rule.rule_priority, last.rule_priority
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Tag matching
// ---------------------------------------------------------------------------

/// A `tagPatternList` entry: literal parts separated by `*`, matched against
/// the whole tag.
#[derive(Debug, Clone)]
struct Glob {
    parts: Vec<String>,
}

impl Glob {
    fn new(pattern: &str) -> Self {
        Glob {
            parts: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    /// Whether the whole of `tag` matches. The first part must be a prefix,
    /// the last a suffix, and the middle parts must occur in order in what
    /// lies between; taking each middle part at its leftmost occurrence is
    /// optimal for `*`-only patterns, so no backtracking is needed.
    fn matches(&self, tag: &str) -> bool {
        match self.parts.as_slice() {
            [] => tag.is_empty(),
            [exact] => tag == exact.as_str(),
            [first, middle @ .., last] => {
                if tag.len() < first.len() + last.len()
                    || !tag.starts_with(first.as_str())
                    || !tag.ends_with(last.as_str())
                {
                    return false;
                }
                let Some(mut rest) = tag.get(first.len()..tag.len() - last.len()) else {
                    return false;
                };
                for part in middle.iter().filter(|part| !part.is_empty()) {
                    let Some(position) = rest.find(part.as_str()) else {
                        return false;
                    };
                    let Some(after) = rest.get(position + part.len()..) else {
                        return false;
                    };
                    rest = after;
                }
                true
            }
        }
    }
}

/// A rule's tag filter, ready for matching.
enum TagFilter<'a> {
    Untagged,
    Any,
    Tagged {
        prefixes: &'a [String],
        patterns: Vec<Glob>,
    },
}

impl<'a> TagFilter<'a> {
    fn new(selection: &'a Selection) -> Self {
        match selection.tag_status {
            TagStatus::Untagged => TagFilter::Untagged,
            TagStatus::Any => TagFilter::Any,
            TagStatus::Tagged => TagFilter::Tagged {
                prefixes: &selection.tag_prefix_list,
                patterns: selection
                    .tag_pattern_list
                    .iter()
                    .map(|pattern| Glob::new(pattern))
                    .collect(),
            },
        }
    }

    /// Whether an image with these tags meets the rule's tagging
    /// requirements. Every prefix and every pattern must match at least one
    /// of the tags (ECR: "all of the tags in the tagPrefixList value are
    /// matched against any of the image's tags").
    fn matches(&self, tags: &[String]) -> bool {
        match self {
            TagFilter::Untagged => tags.is_empty(),
            TagFilter::Any => true,
            TagFilter::Tagged { prefixes, patterns } => {
                !tags.is_empty()
                    && prefixes
                        .iter()
                        .all(|prefix| tags.iter().any(|tag| tag.starts_with(prefix.as_str())))
                    && patterns
                        .iter()
                        .all(|pattern| tags.iter().any(|tag| pattern.matches(tag)))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// What every rule identifies, computed once for all rules.
struct Analysis<'a> {
    /// The rules in the order they apply (priority ascending, stable).
    rules: Vec<&'a Rule>,
    /// For each rule (same index as `rules`), the indices of the images that
    /// meet its tagging requirements, youngest first.
    matched: Vec<Vec<usize>>,
    /// For each image, the index (into `rules`) of the first rule whose
    /// tagging requirements it meets: the only rule allowed to expire it.
    owner: Vec<Option<usize>>,
}

fn analyse<'a>(policy: &'a Policy, images: &[ImageFacts]) -> Analysis<'a> {
    let mut rules: Vec<&Rule> = policy.rules.iter().collect();
    rules.sort_by_key(|rule| rule.rule_priority);

    // Youngest first: pushed_at descending, then digest descending, then
    // input position descending, the exact reverse of the oldest-first order.
    let mut youngest_first: Vec<usize> = (0..images.len()).collect();
    youngest_first
        .sort_unstable_by(|&a, &b| oldest_first_key(images, b).cmp(&oldest_first_key(images, a)));

    let filters: Vec<TagFilter> = rules
        .iter()
        .map(|rule| TagFilter::new(&rule.selection))
        .collect();
    let mut matched: Vec<Vec<usize>> = vec![Vec::new(); rules.len()];
    let mut owner: Vec<Option<usize>> = vec![None; images.len()];
    for &image_index in &youngest_first {
        let Some(image) = images.get(image_index) else {
            continue;
        };
        for (rule_index, filter) in filters.iter().enumerate() {
            if filter.matches(&image.tags) {
                if let Some(list) = matched.get_mut(rule_index) {
                    list.push(image_index);
                }
                if let Some(slot) = owner.get_mut(image_index) {
                    slot.get_or_insert(rule_index);
                }
            }
        }
    }
    Analysis {
        rules,
        matched,
        owner,
    }
}

/// Sort key for "oldest first": pushed_at, then digest, then input position.
fn oldest_first_key(images: &[ImageFacts], index: usize) -> (i64, &str, usize) {
    match images.get(index) {
        Some(image) => (image.pushed_at_ms, image.digest.as_str(), index),
        None => (i64::MAX, "", index),
    }
}

/// Age limit of a `sinceImagePushed` rule, in milliseconds.
fn age_limit_ms(selection: &Selection) -> i64 {
    i64::from(selection.count_number).saturating_mul(MS_PER_DAY)
}

/// Age of an image at `now_ms`.
fn age_ms(image: &ImageFacts, now_ms: i64) -> i64 {
    now_ms.saturating_sub(image.pushed_at_ms)
}

/// The expiries as `(rule_priority, image index)`, in output order.
fn expired_indices(policy: &Policy, images: &[ImageFacts], now_ms: i64) -> Vec<(i64, usize)> {
    let analysis = analyse(policy, images);
    let mut hits: Vec<(i64, usize)> = Vec::new();
    for (rule_index, (rule, matched)) in analysis.rules.iter().zip(&analysis.matched).enumerate() {
        let owned = |index: &usize| analysis.owner.get(*index) == Some(&Some(rule_index));
        let selection = &rule.selection;
        match selection.count_type {
            CountType::ImageCountMoreThan => {
                // Youngest first; everything past the first countNumber is
                // marked, but only images this rule owns are expired.
                let keep = usize::try_from(selection.count_number).unwrap_or(usize::MAX);
                hits.extend(
                    matched
                        .iter()
                        .skip(keep)
                        .filter(|index| owned(index))
                        .map(|&index| (rule.rule_priority, index)),
                );
            }
            CountType::SinceImagePushed => {
                let limit = age_limit_ms(selection);
                hits.extend(
                    matched
                        .iter()
                        .filter(|index| owned(index))
                        .filter(|&&index| {
                            images
                                .get(index)
                                .is_some_and(|image| age_ms(image, now_ms) > limit)
                        })
                        .map(|&index| (rule.rule_priority, index)),
                );
            }
        }
    }
    hits.sort_unstable_by(|&(prio_a, a), &(prio_b, b)| {
        prio_a
            .cmp(&prio_b)
            .then_with(|| oldest_first_key(images, a).cmp(&oldest_first_key(images, b)))
    });
    hits
}

/// Decides which images `policy` expires at `now_ms`.
///
/// Each image is expired by at most one rule: the first rule, in priority
/// order, whose tagging requirements it meets, and only if that rule's count
/// or age criterion marks it (see the module documentation for the ECR rules
/// this follows). The result is sorted by rule priority, then `pushed_at_ms`,
/// then digest.
pub fn evaluate(policy: &Policy, images: &[ImageFacts], now_ms: i64) -> Vec<Expiry> {
    expired_indices(policy, images, now_ms)
        .into_iter()
        .filter_map(|(rule_priority, index)| {
            images.get(index).map(|image| Expiry {
                digest: image.digest.clone(),
                rule_priority,
            })
        })
        .collect()
}

/// The same decision as [`evaluate`], shaped like the
/// `LifecyclePolicyPreviewResult` entries of `GetLifecyclePolicyPreview`
/// (`imageDigest`, `imageTags`, `imagePushedAt`, `action.type` and
/// `appliedRulePriority`), in the same order.
pub fn preview(policy: &Policy, images: &[ImageFacts], now_ms: i64) -> Vec<PreviewResult> {
    expired_indices(policy, images, now_ms)
        .into_iter()
        .filter_map(|(rule_priority, index)| {
            images.get(index).map(|image| PreviewResult {
                image_digest: image.digest.clone(),
                image_tags: image.tags.clone(),
                image_pushed_at_ms: image.pushed_at_ms,
                action: ActionType::Expire,
                applied_rule_priority: rule_priority,
            })
        })
        .collect()
}

/// For a listing tool: the next images each rule will expire, at most
/// `per_rule_limit` per rule, soonest first within a rule, rules in priority
/// order. Images already expired at `now_ms` are not listed.
///
/// * `sinceImagePushed` rules list the images they own that are not yet old
///   enough, with the instant they become so ([`ExpiryTrigger::AtTime`]).
/// * `imageCountMoreThan` rules list the images they own inside the kept
///   window, with the number of further pushes of images that meet the rule's
///   tagging requirements after which each falls out of the window
///   ([`ExpiryTrigger::AfterPushes`]).
///
/// An image only ever appears under its owning rule (the first rule whose
/// tagging requirements it meets), since no other rule can expire it.
pub fn upcoming(
    policy: &Policy,
    images: &[ImageFacts],
    now_ms: i64,
    per_rule_limit: usize,
) -> Vec<UpcomingExpiry> {
    let analysis = analyse(policy, images);
    let mut out = Vec::new();
    for (rule_index, (rule, matched)) in analysis.rules.iter().zip(&analysis.matched).enumerate() {
        let owned = |index: &usize| analysis.owner.get(*index) == Some(&Some(rule_index));
        let selection = &rule.selection;
        let entry = |index: usize, trigger: ExpiryTrigger| {
            images.get(index).map(|image| UpcomingExpiry {
                digest: image.digest.clone(),
                rule_priority: rule.rule_priority,
                trigger,
            })
        };
        match selection.count_type {
            CountType::ImageCountMoreThan => {
                let keep = usize::try_from(selection.count_number).unwrap_or(usize::MAX);
                let window = keep.min(matched.len());
                // Ranks window-1 down to 0: the oldest kept image goes first.
                out.extend(
                    matched
                        .iter()
                        .take(window)
                        .enumerate()
                        .rev()
                        .filter(|(_, index)| owned(index))
                        .take(per_rule_limit)
                        .filter_map(|(rank, &index)| {
                            let pushes = u32::try_from(keep - rank).unwrap_or(u32::MAX);
                            entry(index, ExpiryTrigger::AfterPushes { pushes })
                        }),
                );
            }
            CountType::SinceImagePushed => {
                let limit = age_limit_ms(selection);
                // Oldest first among those not yet expired.
                out.extend(
                    matched
                        .iter()
                        .rev()
                        .filter(|index| owned(index))
                        .filter_map(|&index| images.get(index).map(|image| (index, image)))
                        .filter(|(_, image)| age_ms(image, now_ms) <= limit)
                        .take(per_rule_limit)
                        .filter_map(|(index, image)| {
                            let at_ms = image.pushed_at_ms.saturating_add(limit).saturating_add(1);
                            entry(index, ExpiryTrigger::AtTime { at_ms })
                        }),
                );
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const DAY: i64 = MS_PER_DAY;
    const NOW: i64 = 1_700_000_000_000;

    /// Pads a document with trailing spaces to the 100-character minimum, so
    /// short test policies reach the check under test.
    fn pad(json: &str) -> String {
        format!("{json:<100}")
    }

    fn parse_ok(json: &str) -> Policy {
        match parse(&pad(json)) {
            Ok(policy) => policy,
            Err(message) => panic!("policy should parse: {message}\n{json}"),
        }
    }

    fn img(digest: &str, tags: &[&str], pushed_at_ms: i64) -> ImageFacts {
        ImageFacts {
            digest: digest.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            pushed_at_ms,
        }
    }

    /// An image pushed `days` days before `NOW`.
    fn aged(digest: &str, tags: &[&str], days: i64) -> ImageFacts {
        img(digest, tags, NOW - days * DAY)
    }

    fn run(json: &str, images: &[ImageFacts]) -> Vec<(String, i64)> {
        evaluate(&parse_ok(json), images, NOW)
            .into_iter()
            .map(|e| (e.digest, e.rule_priority))
            .collect()
    }

    fn pairs(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
        expected
            .iter()
            .map(|(d, p)| ((*d).to_owned(), *p))
            .collect()
    }

    fn rule(priority: i64, selection: &str) -> String {
        format!(
            r#"{{"rulePriority":{priority},"selection":{selection},"action":{{"type":"expire"}}}}"#
        )
    }

    fn policy_of(rules: &[String]) -> String {
        format!(r#"{{"rules":[{}]}}"#, rules.join(","))
    }

    // -- documentation examples -------------------------------------------

    const DOC_UNTAGGED_14_DAYS: &str = r#"{
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire images older than 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14
                },
                "action": {
                    "type": "expire"
                }
            }
        ]
    }"#;

    const DOC_KEEP_ONE_UNTAGGED: &str = r#"{
        "rules": [
            {
                "rulePriority": 1,
                "description": "Keep only one untagged image, expire all others",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1
                },
                "action": {
                    "type": "expire"
                }
            }
        ]
    }"#;

    const DOC_PROD_PATTERN_14_DAYS: &str = r#"{
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire images older than 14 days",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["prod*"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14
                },
                "action": {
                    "type": "expire"
                }
            }
        ]
    }"#;

    fn two_prefix_rules(first: &str, second: &str) -> String {
        policy_of(&[
            rule(
                1,
                &format!(
                    r#"{{"tagStatus":"tagged","tagPrefixList":["{first}"],"countType":"imageCountMoreThan","countNumber":1}}"#
                ),
            ),
            rule(
                2,
                &format!(
                    r#"{{"tagStatus":"tagged","tagPrefixList":["{second}"],"countType":"imageCountMoreThan","countNumber":1}}"#
                ),
            ),
        ])
    }

    fn multiple_rules_repo() -> Vec<ImageFacts> {
        vec![
            aged("A", &["beta-1", "prod-1"], 10),
            aged("B", &["beta-2", "prod-2"], 9),
            aged("C", &["beta-3"], 8),
        ]
    }

    #[test]
    fn doc_expire_untagged_older_than_14_days() {
        let images = vec![
            aged("old-untagged", &[], 20),
            img("just-over", &[], NOW - 14 * DAY - 1),
            aged("exactly-14", &[], 14),
            aged("young-untagged", &[], 13),
            aged("old-tagged", &["v1"], 30),
        ];
        assert_eq!(
            run(DOC_UNTAGGED_14_DAYS, &images),
            pairs(&[("old-untagged", 1), ("just-over", 1)])
        );
    }

    #[test]
    fn doc_keep_only_one_untagged_image() {
        let images = vec![
            aged("u1", &[], 5),
            aged("u2", &[], 4),
            aged("u3", &[], 3),
            aged("t1", &["latest"], 10),
        ];
        assert_eq!(
            run(DOC_KEEP_ONE_UNTAGGED, &images),
            pairs(&[("u1", 1), ("u2", 1)])
        );
    }

    #[test]
    fn doc_prod_pattern_older_than_14_days() {
        let images = vec![
            aged("prod-old", &["prod"], 20),
            aged("prod1-old", &["prod1", "x"], 15),
            aged("prod2-young", &["prod2"], 2),
            aged("dev-old", &["dev"], 40),
            aged("untagged-old", &[], 40),
            aged("preprod-old", &["preprod"], 40),
        ];
        assert_eq!(
            run(DOC_PROD_PATTERN_14_DAYS, &images),
            pairs(&[("prod-old", 1), ("prod1-old", 1)])
        );
    }

    #[test]
    fn tag_prefix_prod_image_count_more_than() {
        let json = policy_of(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2}"#,
        )]);
        let images = vec![
            aged("p1", &["prod-1"], 5),
            aged("p2", &["prod-2"], 4),
            aged("p3", &["production"], 3),
            aged("p4", &["prod-4", "latest"], 2),
            aged("d1", &["dev-1"], 9),
            aged("u1", &[], 9),
        ];
        assert_eq!(run(&json, &images), pairs(&[("p1", 1), ("p2", 1)]));
    }

    #[test]
    fn doc_multiple_rules_example_a() {
        assert_eq!(
            run(&two_prefix_rules("prod", "beta"), &multiple_rules_repo()),
            pairs(&[("A", 1)])
        );
    }

    #[test]
    fn doc_multiple_rules_example_b() {
        assert_eq!(
            run(&two_prefix_rules("beta", "prod"), &multiple_rules_repo()),
            pairs(&[("A", 1), ("B", 1)])
        );
    }

    #[test]
    fn doc_multiple_prefixes_in_one_rule_example_a() {
        let json = policy_of(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],"countType":"sinceImagePushed","countNumber":5,"countUnit":"days"}"#,
        )]);
        let images = vec![
            aged("A", &["alpha-1"], 12),
            aged("B", &["beta-1"], 11),
            aged("C", &["alpha-2", "beta-2"], 10),
            aged("D", &["alpha-3"], 4),
            aged("E", &["beta-3"], 3),
            aged("F", &["alpha-4", "beta-4"], 2),
        ];
        assert_eq!(run(&json, &images), pairs(&[("C", 1)]));
    }

    #[test]
    fn doc_multiple_prefixes_in_one_rule_example_b() {
        let json = policy_of(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],"countType":"imageCountMoreThan","countNumber":1}"#,
        )]);
        let images = vec![
            aged("A", &["alpha-1", "beta-1", "gamma-1"], 10),
            aged("B", &["alpha-2", "beta-2"], 9),
            aged("C", &["alpha-3", "beta-3", "gamma-2"], 8),
        ];
        assert_eq!(run(&json, &images), pairs(&[("A", 1), ("B", 1)]));
    }

    #[test]
    fn doc_all_images_example_a() {
        let json = policy_of(&[rule(
            1,
            r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
        )]);
        let images = vec![
            aged("A", &["alpha-1"], 4),
            aged("B", &["beta-1"], 3),
            aged("C", &[], 2),
            aged("D", &["alpha-2"], 1),
        ];
        assert_eq!(run(&json, &images), pairs(&[("A", 1), ("B", 1), ("C", 1)]));
    }

    #[test]
    fn doc_all_images_example_b() {
        let json = policy_of(&[
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["alpha"],"countType":"imageCountMoreThan","countNumber":1}"#,
            ),
            rule(
                2,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
            ),
            rule(
                3,
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
            ),
        ]);
        // D and E were both "pushed 1 day ago"; with equal push times the
        // larger digest counts as younger, so E is the image rule 3 keeps,
        // as in the documented outcome.
        let images = vec![
            aged("A", &["alpha-1", "beta-1"], 4),
            aged("B", &[], 3),
            aged("C", &["alpha-2"], 2),
            aged("D", &["git hash"], 1),
            aged("E", &[], 1),
        ];
        assert_eq!(run(&json, &images), pairs(&[("A", 1), ("B", 2), ("D", 3)]));
    }

    #[test]
    fn prod_star_release_pattern() {
        let json = policy_of(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPatternList":["prod*release"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
        )]);
        let images = vec![
            aged("a", &["prod-1.0-release"], 5),
            aged("b", &["prodrelease"], 5),
            aged("c", &["prod-1.0-release-candidate"], 5),
            aged("d", &["release-prod"], 5),
            aged("e", &["dev", "prod-2.0-release"], 5),
            aged("f", &["prod-3.0-release"], 0),
        ];
        assert_eq!(run(&json, &images), pairs(&[("a", 1), ("b", 1), ("e", 1)]));
    }

    #[test]
    fn multiple_patterns_require_all_to_match() {
        let json = policy_of(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPatternList":["v*","*-stable"],"countType":"imageCountMoreThan","countNumber":1}"#,
        )]);
        let images = vec![
            aged("both-one-tag", &["v1-stable"], 9),
            aged("both-two-tags", &["v2", "x-stable"], 8),
            aged("only-v", &["v3"], 7),
            aged("only-stable", &["y-stable"], 6),
            aged("newest-both", &["v4", "z-stable"], 1),
        ];
        assert_eq!(
            run(&json, &images),
            pairs(&[("both-one-tag", 1), ("both-two-tags", 1)])
        );
    }

    #[test]
    fn images_matched_by_earlier_rules_still_count_but_are_not_expired() {
        // Rule 1 keeps 10 "keep-" images; rule 2 keeps the 2 youngest images
        // overall. Protected images fill rule 2's window, so only the tagged
        // "tmp" images beyond it expire, and none of the "keep-" ones.
        let json = policy_of(&[
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["keep"],"countType":"imageCountMoreThan","countNumber":10}"#,
            ),
            rule(
                2,
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2}"#,
            ),
        ]);
        let images = vec![
            aged("tmp-old", &["tmp"], 9),
            aged("keep-1", &["keep-1"], 3),
            aged("keep-2", &["keep-2"], 2),
            aged("tmp-mid", &["tmp"], 4),
            aged("untagged", &[], 5),
        ];
        assert_eq!(
            run(&json, &images),
            pairs(&[("tmp-old", 2), ("untagged", 2), ("tmp-mid", 2)])
        );
    }

    #[test]
    fn rules_apply_in_priority_order_not_document_order() {
        let json = policy_of(&[
            rule(
                20,
                r#"{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1}"#,
            ),
            rule(
                7,
                r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1}"#,
            ),
        ]);
        let policy = parse_ok(&json);
        let priorities: Vec<i64> = policy.rules.iter().map(|r| r.rule_priority).collect();
        assert_eq!(priorities, vec![7, 20]);
        // Same as docs example A: the prod rule wins.
        assert_eq!(run(&json, &multiple_rules_repo()), pairs(&[("A", 7)]));
    }

    #[test]
    fn output_is_sorted_by_priority_then_push_time_then_digest() {
        let json = policy_of(&[
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["a"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
            ),
            rule(
                2,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
            ),
        ]);
        let images = vec![
            aged("u-z", &[], 3),
            aged("a-2", &["a2"], 2),
            aged("u-a", &[], 3),
            aged("a-1", &["a1"], 5),
            aged("u-m", &[], 9),
            aged("a-0", &["a0"], 2),
        ];
        assert_eq!(
            run(&json, &images),
            pairs(&[
                ("a-1", 1),
                ("a-0", 1),
                ("a-2", 1),
                ("u-m", 2),
                ("u-a", 2),
                ("u-z", 2),
            ])
        );
    }

    #[test]
    fn empty_repository_expires_nothing() {
        assert!(run(DOC_KEEP_ONE_UNTAGGED, &[]).is_empty());
    }

    #[test]
    fn preview_has_the_preview_result_shape() {
        let policy = parse_ok(DOC_KEEP_ONE_UNTAGGED);
        let images = vec![aged("u1", &[], 5), aged("u2", &[], 4)];
        let results = preview(&policy, &images, NOW);
        assert_eq!(
            results,
            vec![PreviewResult {
                image_digest: "u1".to_owned(),
                image_tags: vec![],
                image_pushed_at_ms: NOW - 5 * DAY,
                action: ActionType::Expire,
                applied_rule_priority: 1,
            }]
        );
        assert_eq!(results[0].action.api_name(), "EXPIRE");
        assert_eq!(results[0].action.policy_name(), "expire");
    }

    #[test]
    fn upcoming_lists_next_expiries_per_rule() {
        let json = policy_of(&[
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["rel"],"countType":"imageCountMoreThan","countNumber":3}"#,
            ),
            rule(
                2,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7}"#,
            ),
        ]);
        let policy = parse_ok(&json);
        let images = vec![
            aged("r1", &["rel-1"], 9),
            aged("r2", &["rel-2"], 8),
            aged("r3", &["rel-3"], 7),
            aged("r4", &["rel-4"], 6),
            aged("u-expired", &[], 8),
            aged("u-6", &[], 6),
            aged("u-2", &[], 2),
        ];
        let list = upcoming(&policy, &images, NOW, 10);
        let expected = vec![
            UpcomingExpiry {
                digest: "r2".to_owned(),
                rule_priority: 1,
                trigger: ExpiryTrigger::AfterPushes { pushes: 1 },
            },
            UpcomingExpiry {
                digest: "r3".to_owned(),
                rule_priority: 1,
                trigger: ExpiryTrigger::AfterPushes { pushes: 2 },
            },
            UpcomingExpiry {
                digest: "r4".to_owned(),
                rule_priority: 1,
                trigger: ExpiryTrigger::AfterPushes { pushes: 3 },
            },
            UpcomingExpiry {
                digest: "u-6".to_owned(),
                rule_priority: 2,
                trigger: ExpiryTrigger::AtTime {
                    at_ms: NOW - 6 * DAY + 7 * DAY + 1,
                },
            },
            UpcomingExpiry {
                digest: "u-2".to_owned(),
                rule_priority: 2,
                trigger: ExpiryTrigger::AtTime {
                    at_ms: NOW - 2 * DAY + 7 * DAY + 1,
                },
            },
        ];
        assert_eq!(list, expected);
        // The limit applies per rule.
        let limited: Vec<String> = upcoming(&policy, &images, NOW, 1)
            .into_iter()
            .map(|u| u.digest)
            .collect();
        assert_eq!(limited, vec!["r2".to_owned(), "u-6".to_owned()]);
        // An AtTime trigger is exactly the first instant evaluate expires it.
        let at = NOW - 6 * DAY + 7 * DAY + 1;
        let at_expiry: Vec<String> = evaluate(&policy, &images, at)
            .into_iter()
            .map(|e| e.digest)
            .collect();
        assert!(at_expiry.contains(&"u-6".to_owned()));
        let before: Vec<String> = evaluate(&policy, &images, at - 1)
            .into_iter()
            .map(|e| e.digest)
            .collect();
        assert!(!before.contains(&"u-6".to_owned()));
    }

    #[test]
    fn upcoming_skips_images_owned_by_other_rules() {
        // The any rule's window holds a prod image owned by rule 1: it is not
        // listed under rule 2 (rule 2 can never expire it).
        let json = policy_of(&[
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":5}"#,
            ),
            rule(
                2,
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2}"#,
            ),
        ]);
        let policy = parse_ok(&json);
        let images = vec![aged("prod", &["prod"], 1), aged("dev", &["dev"], 2)];
        let rule2: Vec<(String, ExpiryTrigger)> = upcoming(&policy, &images, NOW, 10)
            .into_iter()
            .filter(|u| u.rule_priority == 2)
            .map(|u| (u.digest, u.trigger))
            .collect();
        assert_eq!(
            rule2,
            vec![("dev".to_owned(), ExpiryTrigger::AfterPushes { pushes: 1 })]
        );
    }

    // -- 10,000 images -------------------------------------------------------

    #[test]
    fn ten_thousand_images() {
        // Image i is pushed i minutes after BASE (higher i = younger); NOW is
        // 10,000 minutes after BASE.
        //   i % 4 == 0: untagged
        //   i % 4 == 1: ["prod-i"]
        //   i % 4 == 2: ["dev-i"]
        //   i % 4 == 3: ["prod-i", "release"]
        const MINUTE: i64 = 60_000;
        const BASE: i64 = 1_600_000_000_000;
        let n: i64 = 10_000;
        let now = BASE + n * MINUTE;
        let images: Vec<ImageFacts> = (0..n)
            .map(|i| {
                let tags: Vec<String> = match i % 4 {
                    0 => vec![],
                    1 => vec![format!("prod-{i}")],
                    2 => vec![format!("dev-{i}")],
                    _ => vec![format!("prod-{i}"), "release".to_owned()],
                };
                ImageFacts {
                    digest: format!("sha256:{i:064x}"),
                    tags,
                    pushed_at_ms: BASE + i * MINUTE,
                }
            })
            .collect();
        let json = policy_of(&[
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":100}"#,
            ),
            rule(
                2,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
            ),
            rule(
                3,
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1000}"#,
            ),
        ]);
        let policy = parse_ok(&json);
        let result = evaluate(&policy, &images, now);

        let index_of = |digest: &str| -> i64 {
            i64::from_str_radix(digest.trim_start_matches("sha256:"), 16).unwrap_or(-1)
        };
        let mut by_rule: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for expiry in &result {
            by_rule
                .entry(expiry.rule_priority)
                .or_default()
                .push(index_of(&expiry.digest));
        }

        // Rule 1: 5,000 prod images, the 100 youngest kept.
        let expected_1: Vec<i64> = (0..n).filter(|i| i % 2 == 1).take(4_900).collect();
        assert_eq!(by_rule.get(&1), Some(&expected_1));
        // Rule 2: untagged images older than 1,440 minutes: i < 8,560.
        let expected_2: Vec<i64> = (0..8_560).filter(|i| i % 4 == 0).collect();
        assert_eq!(by_rule.get(&2), Some(&expected_2));
        // Rule 3: the 1,000 youngest images are kept (i >= 9,000); of the
        // rest it may only expire the dev images, which no earlier rule
        // matches.
        let expected_3: Vec<i64> = (0..9_000).filter(|i| i % 4 == 2).collect();
        assert_eq!(by_rule.get(&3), Some(&expected_3));

        assert_eq!(result.len(), 4_900 + 2_140 + 2_250);
        assert_eq!(preview(&policy, &images, now).len(), result.len());
        let unique: BTreeSet<&str> = result.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(unique.len(), result.len());

        // Shuffled input gives the same output.
        let mut shuffled = images.clone();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for i in (1..shuffled.len()).rev() {
            let j = usize::try_from(next_random(&mut state) % (i as u64 + 1)).unwrap_or(0);
            shuffled.swap(i, j);
        }
        assert_eq!(evaluate(&policy, &shuffled, now), result);
    }

    // -- randomized cross-check against a literal reading of the docs ------

    fn next_random(state: &mut u64) -> u64 {
        // xorshift64*
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Whole-string `*` glob by plain recursion, independent of [`Glob`].
    fn reference_glob(pattern: &[u8], tag: &[u8]) -> bool {
        match pattern.split_first() {
            None => tag.is_empty(),
            Some((b'*', rest)) => (0..=tag.len()).any(|skip| reference_glob(rest, &tag[skip..])),
            Some((c, rest)) => tag.first() == Some(c) && reference_glob(rest, &tag[1..]),
        }
    }

    fn reference_matches(selection: &Selection, tags: &[String]) -> bool {
        match selection.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Tagged => {
                !tags.is_empty()
                    && selection
                        .tag_prefix_list
                        .iter()
                        .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                    && selection.tag_pattern_list.iter().all(|p| {
                        tags.iter()
                            .any(|t| reference_glob(p.as_bytes(), t.as_bytes()))
                    })
            }
        }
    }

    /// The documented procedure, rule by rule: identify, mark, and skip what
    /// a higher-priority rule marked or matches.
    fn reference_evaluate(policy: &Policy, images: &[ImageFacts], now: i64) -> Vec<Expiry> {
        let mut rules = policy.rules.clone();
        rules.sort_by_key(|r| r.rule_priority);
        let mut expired: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (k, rule) in rules.iter().enumerate() {
            let mut seen: Vec<&ImageFacts> = images
                .iter()
                .filter(|im| reference_matches(&rule.selection, &im.tags))
                .collect();
            seen.sort_by(|a, b| {
                b.pushed_at_ms
                    .cmp(&a.pushed_at_ms)
                    .then_with(|| b.digest.cmp(&a.digest))
            });
            let n = rule.selection.count_number as usize;
            let marked: Vec<&ImageFacts> = match rule.selection.count_type {
                CountType::ImageCountMoreThan => seen.into_iter().skip(n).collect(),
                CountType::SinceImagePushed => seen
                    .into_iter()
                    .filter(|im| {
                        now - im.pushed_at_ms > i64::from(rule.selection.count_number) * DAY
                    })
                    .collect(),
            };
            for im in marked {
                if expired.contains_key(&im.digest) {
                    continue;
                }
                if rules[..k]
                    .iter()
                    .any(|higher| reference_matches(&higher.selection, &im.tags))
                {
                    continue;
                }
                expired.insert(im.digest.clone(), (rule.rule_priority, im.pushed_at_ms));
            }
        }
        let mut out: Vec<(i64, i64, String)> = expired
            .into_iter()
            .map(|(digest, (prio, pushed))| (prio, pushed, digest))
            .collect();
        out.sort();
        out.into_iter()
            .map(|(rule_priority, _, digest)| Expiry {
                digest,
                rule_priority,
            })
            .collect()
    }

    const RANDOM_TAGS: &[&str] = &[
        "prod",
        "prod-1",
        "prod-2-release",
        "beta-1",
        "beta",
        "release",
        "v1.0",
        "v1.0-rc",
        "latest",
        "dev-x",
        "preprod",
    ];
    const RANDOM_SELECTIONS: &[&str] = &[
        r#""tagStatus":"tagged","tagPrefixList":["prod"]"#,
        r#""tagStatus":"tagged","tagPrefixList":["beta"]"#,
        r#""tagStatus":"tagged","tagPrefixList":["prod","beta"]"#,
        r#""tagStatus":"tagged","tagPrefixList":["v"]"#,
        r#""tagStatus":"tagged","tagPatternList":["prod*"]"#,
        r#""tagStatus":"tagged","tagPatternList":["*release"]"#,
        r#""tagStatus":"tagged","tagPatternList":["prod*release"]"#,
        r#""tagStatus":"tagged","tagPatternList":["*-*"]"#,
        r#""tagStatus":"tagged","tagPatternList":["v*","*rc"]"#,
        r#""tagStatus":"tagged","tagPatternList":["latest"]"#,
        r#""tagStatus":"tagged","tagPatternList":["*"]"#,
    ];

    #[test]
    fn randomized_policies_agree_with_reference() {
        let mut state = 0x0123_4567_89AB_CDEF_u64;
        let mut checked = 0;
        let mut total_expired = 0;
        for case in 0..400 {
            let image_count = (next_random(&mut state) % 40) as usize;
            let images: Vec<ImageFacts> = (0..image_count)
                .map(|i| {
                    let tag_count = next_random(&mut state) % 4;
                    let mut tags: Vec<String> = Vec::new();
                    for _ in 0..tag_count {
                        let t = RANDOM_TAGS[(next_random(&mut state) as usize) % RANDOM_TAGS.len()];
                        if !tags.iter().any(|x| x == t) {
                            tags.push(t.to_owned());
                        }
                    }
                    // Coarse push times (whole hours over 20 days) so ties happen.
                    let hours = (next_random(&mut state) % 480) as i64;
                    ImageFacts {
                        digest: format!("sha256:{case:03}-{i:03}"),
                        tags,
                        pushed_at_ms: NOW - hours * 3_600_000,
                    }
                })
                .collect();

            let rule_count = 1 + (next_random(&mut state) % 4) as usize;
            let mut rules = Vec::new();
            let mut used_untagged = false;
            for r in 0..rule_count {
                let count = if next_random(&mut state).is_multiple_of(2) {
                    format!(
                        r#""countType":"imageCountMoreThan","countNumber":{}"#,
                        1 + next_random(&mut state) % 6
                    )
                } else {
                    format!(
                        r#""countType":"sinceImagePushed","countUnit":"days","countNumber":{}"#,
                        1 + next_random(&mut state) % 15
                    )
                };
                let roll = next_random(&mut state) % 10;
                let tag_part = if roll == 0 && !used_untagged {
                    used_untagged = true;
                    r#""tagStatus":"untagged""#.to_owned()
                } else {
                    RANDOM_SELECTIONS[(next_random(&mut state) as usize) % RANDOM_SELECTIONS.len()]
                        .to_owned()
                };
                rules.push(rule((r as i64 + 1) * 3, &format!("{{{tag_part},{count}}}")));
            }
            if next_random(&mut state).is_multiple_of(3) {
                let count = 1 + next_random(&mut state) % 10;
                rules.push(rule(
                    100,
                    &format!(
                        r#"{{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":{count}}}"#
                    ),
                ));
            }
            let policy = parse_ok(&policy_of(&rules));
            let expected = reference_evaluate(&policy, &images, NOW);
            assert_eq!(
                evaluate(&policy, &images, NOW),
                expected,
                "case {case}: {rules:?}"
            );
            total_expired += expected.len();
            checked += 1;
        }
        assert_eq!(checked, 400);
        // The cases are not trivially empty.
        assert!(total_expired > 1_000, "only {total_expired} expiries");
    }

    // -- glob matching -------------------------------------------------------

    #[test]
    fn glob_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("prod*", "prod", true),
            ("prod*", "prod1", true),
            ("prod*", "production", true),
            ("prod*", "preprod", false),
            ("*prod", "preprod", true),
            ("*prod", "prod-x", false),
            ("prod*release", "prod-1.0-release", true),
            ("prod*release", "prodrelease", true),
            ("prod*release", "prod-release-x", false),
            ("prod*release", "release-prod", false),
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("latest", "Latest", false),
            ("*", "anything", true),
            ("*", "", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("*test*1*2*3", "my-test-1-2-3", true),
            ("*test*1*2*3", "test123", true),
            ("*test*1*2*3", "test132", false),
            ("test*1*2*3*", "test-1-2-3-final", true),
            ("**", "x", true),
            ("a**b", "ab", true),
            ("*ab*ab*", "xabyab", true),
            ("*ab*ab*", "xab", false),
            ("é*ü", "éaü", true),
            ("é*ü", "éü", true),
            ("ü*ü", "ü", false),
        ];
        for &(pattern, tag, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(tag),
                expected,
                "pattern {pattern:?} tag {tag:?}"
            );
            assert_eq!(
                reference_glob(pattern.as_bytes(), tag.as_bytes()),
                expected,
                "reference: pattern {pattern:?} tag {tag:?}"
            );
        }
    }

    // -- parsing -----------------------------------------------------------

    #[test]
    fn parses_documented_policies() {
        let policy = parse_ok(DOC_UNTAGGED_14_DAYS);
        assert_eq!(
            policy,
            Policy {
                rules: vec![Rule {
                    rule_priority: 1,
                    description: Some("Expire images older than 14 days".to_owned()),
                    selection: Selection {
                        tag_status: TagStatus::Untagged,
                        tag_prefix_list: vec![],
                        tag_pattern_list: vec![],
                        count_type: CountType::SinceImagePushed,
                        count_unit: Some(CountUnit::Days),
                        count_number: 14,
                    },
                    action: ActionType::Expire,
                }]
            }
        );
        let policy = parse_ok(DOC_PROD_PATTERN_14_DAYS);
        assert_eq!(policy.rules[0].selection.tag_pattern_list, vec!["prod*"]);
        assert_eq!(policy.rules[0].selection.tag_status.as_str(), "tagged");
        assert_eq!(
            policy.rules[0].selection.count_type.as_str(),
            "sinceImagePushed"
        );
        parse_ok(DOC_KEEP_ONE_UNTAGGED);
        parse_ok(&two_prefix_rules("prod", "beta"));
    }

    #[test]
    fn accepts_edge_values() {
        let ok: &[&str] = &[
            // Four wildcards per string is the documented maximum.
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*test*1*2*3","test*1*2*3*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
            // storageClass "standard" is the default class and changes nothing.
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"standard","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
            // Largest 32-bit values.
            r#"{"rules":[{"rulePriority":2147483647,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":2147483647},"action":{"type":"expire"}}]}"#,
            // An untagged rule and an any rule may coexist (docs example).
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        ];
        for json in ok {
            parse_ok(json);
        }
        // Exactly 30,720 characters is accepted.
        let long = format!(
            "{:<width$}",
            DOC_KEEP_ONE_UNTAGGED,
            width = POLICY_TEXT_MAX_CHARS
        );
        assert_eq!(long.chars().count(), POLICY_TEXT_MAX_CHARS);
        assert!(parse(&long).is_ok());
        // Exactly 100 characters passes the length check (no valid policy is
        // that short, so the JSON check is what answers).
        let hundred = format!("{:<100}", "not json");
        assert_eq!(
            parse(&hundred),
            Err(ecr("Could not map policyString into LifecyclePolicy."))
        );
    }

    fn ecr(detail: &str) -> String {
        format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: \
             'Lifecycle policy validation failure: {detail}'"
        )
    }

    /// A one-rule policy with the given selection object.
    fn with_selection(selection: &str) -> String {
        policy_of(&[rule(1, selection)])
    }

    /// A one-rule policy with the given action object.
    fn with_action(action: &str) -> String {
        format!(
            r#"{{"rules":[{{"rulePriority":1,"selection":{{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}},"action":{action}}}]}}"#
        )
    }

    #[test]
    fn rejects_invalid_policies_with_ecr_messages() {
        let any1 = r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#;
        let untagged1 =
            r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#;
        let prod1 = r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1}"#;
        let cases: Vec<(&str, String, String)> = vec![
            // -- document shape
            (
                "not json",
                "this is not json".to_owned(),
                ecr("Could not map policyString into LifecyclePolicy."),
            ),
            (
                "top-level array",
                r#"[{"rules":[]}]"#.to_owned(),
                ecr("Could not map policyString into LifecyclePolicy."),
            ),
            (
                "missing rules",
                r#"{"no_rules":"test"}"#.to_owned(),
                ecr(r#"object has missing required properties (["rules"]) (at /)"#),
            ),
            (
                "unknown top-level field",
                r#"{"rules":[],"version":"1"}"#.to_owned(),
                ecr(r#"object instance has properties which are not allowed by the schema: (["version"]) (at /)"#),
            ),
            (
                "rules not an array",
                r#"{"rules":{"rulePriority":1}}"#.to_owned(),
                ecr(r#"instance type (object) does not match any allowed primitive type (allowed: ["array"]) (at /rules)"#),
            ),
            (
                "empty rules",
                r#"{"rules":[]}"#.to_owned(),
                ecr("array is too short: must have at least 1 elements but instance has 0 elements (at /rules)"),
            ),
            // -- rule
            (
                "rule not an object",
                r#"{"rules":["not_dict"]}"#.to_owned(),
                ecr(r#"instance type (string) does not match any allowed primitive type (allowed: ["object"]) (at /rules/0)"#),
            ),
            (
                "rule missing rulePriority",
                format!(r#"{{"rules":[{{"selection":{any1},"action":{{"type":"expire"}}}}]}}"#),
                ecr(r#"object has missing required properties (["rulePriority"]) (at /rules/0)"#),
            ),
            (
                "rule missing selection and action",
                r#"{"rules":[{"rulePriority":1}]}"#.to_owned(),
                ecr(r#"object has missing required properties (["action","selection"]) (at /rules/0)"#),
            ),
            (
                "rule unknown field",
                format!(r#"{{"rules":[{{"rulePriority":1,"selection":{any1},"action":{{"type":"expire"}},"unknown":123}}]}}"#),
                ecr(r#"object instance has properties which are not allowed by the schema: (["unknown"]) (at /rules/0)"#),
            ),
            (
                "rulePriority string",
                format!(r#"{{"rules":[{{"rulePriority":"1","selection":{any1},"action":{{"type":"expire"}}}}]}}"#),
                ecr(r#"instance type (string) does not match any allowed primitive type (allowed: ["integer"]) (at /rules/0/rulePriority)"#),
            ),
            (
                "rulePriority fractional",
                format!(r#"{{"rules":[{{"rulePriority":1.5,"selection":{any1},"action":{{"type":"expire"}}}}]}}"#),
                ecr(r#"instance type (number) does not match any allowed primitive type (allowed: ["integer"]) (at /rules/0/rulePriority)"#),
            ),
            (
                "rulePriority zero",
                policy_of(&[rule(0, any1)]),
                ecr("numeric instance is lower than the required minimum (minimum: 1, found: 0) (at /rules/0/rulePriority)"),
            ),
            (
                "rulePriority negative",
                policy_of(&[rule(-3, any1)]),
                ecr("numeric instance is lower than the required minimum (minimum: 1, found: -3) (at /rules/0/rulePriority)"),
            ),
            (
                "rulePriority too large",
                policy_of(&[rule(2_147_483_648, any1)]),
                ecr("numeric instance is greater than the required maximum (maximum: 2147483647, found: 2147483648) (at /rules/0/rulePriority)"),
            ),
            (
                "description not a string",
                format!(r#"{{"rules":[{{"rulePriority":1,"description":7,"selection":{any1},"action":{{"type":"expire"}}}}]}}"#),
                ecr(r#"instance type (integer) does not match any allowed primitive type (allowed: ["string"]) (at /rules/0/description)"#),
            ),
            // -- selection shape
            (
                "selection not an object",
                r#"{"rules":[{"rulePriority":1,"selection":[],"action":{"type":"expire"}}]}"#.to_owned(),
                ecr(r#"instance type (array) does not match any allowed primitive type (allowed: ["object"]) (at /rules/0/selection)"#),
            ),
            (
                "selection missing tagStatus",
                with_selection(r#"{"countType":"imageCountMoreThan","countNumber":30}"#),
                ecr(r#"object has missing required properties (["tagStatus"]) (at /rules/0/selection)"#),
            ),
            (
                "selection missing countType and countNumber",
                with_selection(r#"{"tagStatus":"untagged"}"#),
                ecr(r#"object has missing required properties (["countNumber","countType"]) (at /rules/0/selection)"#),
            ),
            (
                "selection unknown field",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":30,"unknown":123}"#),
                ecr(r#"object instance has properties which are not allowed by the schema: (["unknown"]) (at /rules/0/selection)"#),
            ),
            (
                "tagStatus unknown value",
                with_selection(r#"{"tagStatus":"unknown","countType":"imageCountMoreThan","countNumber":30}"#),
                ecr(r#"instance value ("unknown") not found in enum (possible values: ["any","tagged","untagged"]) (at /rules/0/selection/tagStatus)"#),
            ),
            (
                "tagStatus is case-sensitive",
                with_selection(r#"{"tagStatus":"TAGGED","tagPrefixList":["p"],"countType":"imageCountMoreThan","countNumber":30}"#),
                ecr(r#"instance value ("TAGGED") not found in enum (possible values: ["any","tagged","untagged"]) (at /rules/0/selection/tagStatus)"#),
            ),
            (
                "tagStatus not a string",
                with_selection(r#"{"tagStatus":true,"countType":"imageCountMoreThan","countNumber":30}"#),
                ecr(r#"instance type (boolean) does not match any allowed primitive type (allowed: ["string"]) (at /rules/0/selection/tagStatus)"#),
            ),
            (
                "countType unknown value",
                with_selection(r#"{"tagStatus":"untagged","countType":"unknown","countNumber":30}"#),
                ecr(r#"instance value ("unknown") not found in enum (possible values: ["imageCountMoreThan","sinceImagePushed"]) (at /rules/0/selection/countType)"#),
            ),
            (
                "countType sinceImagePulled",
                with_selection(r#"{"tagStatus":"untagged","countType":"sinceImagePulled","countUnit":"days","countNumber":30}"#),
                ecr(r#"countType "sinceImagePulled" is not supported by this registry (the archive storage class is not available) (at /rules/0/selection/countType)"#),
            ),
            (
                "countType sinceImageTransitioned",
                with_selection(r#"{"tagStatus":"untagged","countType":"sinceImageTransitioned","countUnit":"days","countNumber":30}"#),
                ecr(r#"countType "sinceImageTransitioned" is not supported by this registry (the archive storage class is not available) (at /rules/0/selection/countType)"#),
            ),
            (
                "countUnit unknown value",
                with_selection(r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"hours","countNumber":30}"#),
                ecr(r#"instance value ("hours") not found in enum (possible values: ["days"]) (at /rules/0/selection/countUnit)"#),
            ),
            (
                "countNumber zero",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0}"#),
                ecr("numeric instance is lower than the required minimum (minimum: 1, found: 0) (at /rules/0/selection/countNumber)"),
            ),
            (
                "countNumber negative",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":-1}"#),
                ecr("numeric instance is lower than the required minimum (minimum: 1, found: -1) (at /rules/0/selection/countNumber)"),
            ),
            (
                "countNumber too large",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":99999999999}"#),
                ecr("numeric instance is greater than the required maximum (maximum: 2147483647, found: 99999999999) (at /rules/0/selection/countNumber)"),
            ),
            (
                "countNumber string",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":"5"}"#),
                ecr(r#"instance type (string) does not match any allowed primitive type (allowed: ["integer"]) (at /rules/0/selection/countNumber)"#),
            ),
            (
                "countNumber null",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":null}"#),
                ecr(r#"instance type (null) does not match any allowed primitive type (allowed: ["integer"]) (at /rules/0/selection/countNumber)"#),
            ),
            (
                "tagPrefixList not an array",
                with_selection(r#"{"tagStatus":"tagged","tagPrefixList":"prod","countType":"imageCountMoreThan","countNumber":1}"#),
                ecr(r#"instance type (string) does not match any allowed primitive type (allowed: ["array"]) (at /rules/0/selection/tagPrefixList)"#),
            ),
            (
                "tagPatternList entry not a string",
                with_selection(r#"{"tagStatus":"tagged","tagPatternList":["ok",5],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr(r#"instance type (integer) does not match any allowed primitive type (allowed: ["string"]) (at /rules/0/selection/tagPatternList/1)"#),
            ),
            (
                "storageClass archive",
                with_selection(r#"{"tagStatus":"any","storageClass":"archive","countType":"imageCountMoreThan","countNumber":1}"#),
                ecr(r#"storageClass "archive" is not supported by this registry (the archive storage class is not available) (at /rules/0/selection/storageClass)"#),
            ),
            (
                "storageClass unknown value",
                with_selection(r#"{"tagStatus":"any","storageClass":"glacier","countType":"imageCountMoreThan","countNumber":1}"#),
                ecr(r#"instance value ("glacier") not found in enum (possible values: ["archive","standard"]) (at /rules/0/selection/storageClass)"#),
            ),
            // -- selection semantics
            (
                "tagged without a list",
                with_selection(r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED (at /rules/0/selection)"),
            ),
            (
                "tagged with an empty prefix list",
                with_selection(r#"{"tagStatus":"tagged","tagPrefixList":[],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED (at /rules/0/selection)"),
            ),
            (
                "tagged with an empty pattern list",
                with_selection(r#"{"tagStatus":"tagged","tagPatternList":[],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED (at /rules/0/selection)"),
            ),
            (
                "tagged with both lists",
                with_selection(r#"{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["b*"],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("A rule may specify either tagPrefixList or tagPatternList, but not both (at /rules/0/selection)"),
            ),
            (
                "untagged with a prefix list",
                with_selection(r#"{"tagStatus":"untagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("tagPrefixList and tagPatternList may only be used when tagStatus is tagged (found tagStatus=untagged) (at /rules/0/selection)"),
            ),
            (
                "any with a pattern list",
                with_selection(r#"{"tagStatus":"any","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("tagPrefixList and tagPatternList may only be used when tagStatus is tagged (found tagStatus=any) (at /rules/0/selection)"),
            ),
            (
                "any with an empty prefix list",
                with_selection(r#"{"tagStatus":"any","tagPrefixList":[],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr("tagPrefixList and tagPatternList may only be used when tagStatus is tagged (found tagStatus=any) (at /rules/0/selection)"),
            ),
            (
                "five wildcards",
                with_selection(r#"{"tagStatus":"tagged","tagPatternList":["ok*","*a*b*c*d*"],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr(r#"tagPatternList entry "*a*b*c*d*" has 5 wildcards; there is a maximum limit of four wildcards (*) per string (at /rules/0/selection/tagPatternList/1)"#),
            ),
            (
                "documented invalid pattern",
                with_selection(r#"{"tagStatus":"tagged","tagPatternList":["test*1*2*3*4*5*6"],"countType":"imageCountMoreThan","countNumber":1}"#),
                ecr(r#"tagPatternList entry "test*1*2*3*4*5*6" has 6 wildcards; there is a maximum limit of four wildcards (*) per string (at /rules/0/selection/tagPatternList/0)"#),
            ),
            (
                "sinceImagePushed without countUnit",
                with_selection(r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":14}"#),
                ecr("countUnit is required when countType is sinceImagePushed (at /rules/0/selection)"),
            ),
            (
                "imageCountMoreThan with countUnit",
                with_selection(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":5}"#),
                ecr("countUnit must only be specified when countType is sinceImagePushed (at /rules/0/selection)"),
            ),
            // -- action
            (
                "action not an object",
                with_action(r#""expire""#),
                ecr(r#"instance type (string) does not match any allowed primitive type (allowed: ["object"]) (at /rules/0/action)"#),
            ),
            (
                "action missing type",
                with_action("{}"),
                ecr(r#"object has missing required properties (["type"]) (at /rules/0/action)"#),
            ),
            (
                "action unknown field",
                with_action(r#"{"type":"expire","unknown":123}"#),
                ecr(r#"object instance has properties which are not allowed by the schema: (["unknown"]) (at /rules/0/action)"#),
            ),
            (
                "action type unknown",
                with_action(r#"{"type":"keep"}"#),
                ecr(r#"instance value ("keep") not found in enum (possible values: ["expire"]) (at /rules/0/action/type)"#),
            ),
            (
                "action type uppercase",
                with_action(r#"{"type":"EXPIRE"}"#),
                ecr(r#"instance value ("EXPIRE") not found in enum (possible values: ["expire"]) (at /rules/0/action/type)"#),
            ),
            (
                "action type transition",
                with_action(r#"{"type":"transition","targetStorageClass":"archive"}"#),
                ecr(r#"action type "transition" is not supported by this registry (the archive storage class is not available) (at /rules/0/action/type)"#),
            ),
            (
                "action targetStorageClass with expire",
                with_action(r#"{"type":"expire","targetStorageClass":"archive"}"#),
                ecr("targetStorageClass is not supported by this registry (the archive storage class is not available) (at /rules/0/action/targetStorageClass)"),
            ),
            // -- rule set
            (
                "duplicate rulePriority",
                policy_of(&[rule(1, prod1), rule(1, untagged1)]),
                ecr("Rule priorities must be unique (rulePriority 1 is used by more than one rule)"),
            ),
            (
                "two untagged rules",
                policy_of(&[
                    rule(1, untagged1),
                    rule(2, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":3}"#),
                ]),
                ecr("Only one rule can select Untagged images (rulePriority 1 and 2 both use tagStatus=untagged)"),
            ),
            (
                "any rule not last",
                policy_of(&[rule(1, any1), rule(2, prod1)]),
                ecr("Rule for tagStatus=ANY must have the lowest priority, that is the highest rulePriority (rulePriority 1 uses tagStatus=any but rulePriority 2 is higher)"),
            ),
            (
                "any rule not last, listed last",
                policy_of(&[rule(5, untagged1), rule(3, any1)]),
                ecr("Rule for tagStatus=ANY must have the lowest priority, that is the highest rulePriority (rulePriority 3 uses tagStatus=any but rulePriority 5 is higher)"),
            ),
            (
                "two any rules",
                policy_of(&[rule(1, any1), rule(2, any1)]),
                ecr("Rule for tagStatus=ANY must have the lowest priority, that is the highest rulePriority (rulePriority 1 uses tagStatus=any but rulePriority 2 is higher)"),
            ),
        ];
        for (name, json, expected) in &cases {
            match parse(&pad(json)) {
                Ok(_) => panic!("{name}: accepted {json}"),
                Err(message) => assert_eq!(&message, expected, "{name}"),
            }
        }
        assert_eq!(cases.len(), 59);
    }

    #[test]
    fn rejects_text_outside_the_length_limits() {
        let short = r#"{"rules":[]}"#;
        assert_eq!(
            parse(short),
            Err(
                "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: \
                 'Member must have length greater than or equal to 100'"
                    .to_owned()
            )
        );
        let just_short = format!("{:<99}", short);
        assert!(parse(&just_short)
            .err()
            .is_some_and(|m| m.contains("greater than or equal to 100")));
        let long = format!(
            "{:<width$}",
            DOC_KEEP_ONE_UNTAGGED,
            width = POLICY_TEXT_MAX_CHARS + 1
        );
        assert_eq!(
            parse(&long),
            Err(
                "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: \
                 'Member must have length less than or equal to 30720'"
                    .to_owned()
            )
        );
        // Length is counted in characters, not bytes.
        let multibyte = format!(
            r#"{{"rules":[{{"rulePriority":1,"description":"{}","selection":{{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}},"action":{{"type":"expire"}}}}]}}"#,
            "é".repeat(20_000)
        );
        assert!(multibyte.len() > POLICY_TEXT_MAX_CHARS);
        assert!(multibyte.chars().count() <= POLICY_TEXT_MAX_CHARS);
        assert!(parse(&multibyte).is_ok());
    }

    #[test]
    fn hand_built_policies_evaluate_without_validation() {
        // evaluate() does not rely on parse(): unsorted rules are applied in
        // priority order.
        let tagged = |priority: i64, prefix: &str| Rule {
            rule_priority: priority,
            description: None,
            selection: Selection {
                tag_status: TagStatus::Tagged,
                tag_prefix_list: vec![prefix.to_owned()],
                tag_pattern_list: vec![],
                count_type: CountType::ImageCountMoreThan,
                count_unit: None,
                count_number: 1,
            },
            action: ActionType::Expire,
        };
        let policy = Policy {
            rules: vec![tagged(2, "beta"), tagged(1, "prod")],
        };
        let result = evaluate(&policy, &multiple_rules_repo(), NOW);
        assert_eq!(
            result,
            vec![Expiry {
                digest: "A".to_owned(),
                rule_priority: 1
            }]
        );
    }
}
