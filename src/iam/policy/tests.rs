//! Table-driven tests, most rows taken from the IAM User Guide's examples
//! ("Policy evaluation logic", "Condition operators", "Variables and
//! tags", "Creating a condition with multiple keys or values").

use super::*;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const BOB: &str = "arn:aws:iam::123456789012:user/bob";
const ROOT: &str = "arn:aws:iam::123456789012:root";
const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/app/i-0abc";
const OTHER_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/other/i-0abc";
const STRANGER: &str = "arn:aws:iam::999999999999:user/mallory";
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";

const ALLOW: Decision = Decision::Allow;
const NO_IDENTITY: Decision = Decision::ImplicitDeny(PolicyType::Identity);
const DENY_IDENTITY: Decision = Decision::ExplicitDeny(PolicyType::Identity);
const DENY_RESOURCE: Decision = Decision::ExplicitDeny(PolicyType::Resource);
const NO_BOUNDARY: Decision = Decision::ImplicitDeny(PolicyType::Boundary);
const DENY_BOUNDARY: Decision = Decision::ExplicitDeny(PolicyType::Boundary);
const NO_SESSION: Decision = Decision::ImplicitDeny(PolicyType::Session);
const DENY_SESSION: Decision = Decision::ExplicitDeny(PolicyType::Session);
const TRUSTED: Decision = Decision::Allow;
const NOT_TRUSTED: Decision = Decision::ImplicitDeny(PolicyType::Trust);
const DENY_TRUST: Decision = Decision::ExplicitDeny(PolicyType::Trust);

/// One row: the policies, the request, the expected decision.
#[derive(Clone)]
struct Case {
    name: &'static str,
    identity: Vec<String>,
    resource: Vec<String>,
    boundary: Option<Vec<String>>,
    session: Option<Vec<String>>,
    principal: &'static str,
    action: &'static str,
    arn: &'static str,
    keys: Vec<(&'static str, Vec<&'static str>)>,
    expect: Decision,
}

fn case(name: &'static str, expect: Decision) -> Case {
    Case {
        name,
        identity: Vec::new(),
        resource: Vec::new(),
        boundary: None,
        session: None,
        principal: ALICE,
        action: "ecs:RunTask",
        arn: "*",
        keys: Vec::new(),
        expect,
    }
}

impl Case {
    fn id(mut self, policy: &str) -> Case {
        self.identity.push(policy.to_string());
        self
    }
    fn res(mut self, policy: &str) -> Case {
        self.resource.push(policy.to_string());
        self
    }
    fn boundary(mut self, policy: &str) -> Case {
        self.boundary
            .get_or_insert_with(Vec::new)
            .push(policy.to_string());
        self
    }
    fn session(mut self, policy: &str) -> Case {
        self.session
            .get_or_insert_with(Vec::new)
            .push(policy.to_string());
        self
    }
    fn empty_session(mut self) -> Case {
        self.session = Some(Vec::new());
        self
    }
    fn by(mut self, principal: &'static str) -> Case {
        self.principal = principal;
        self
    }
    fn act(mut self, action: &'static str) -> Case {
        self.action = action;
        self
    }
    fn on(mut self, arn: &'static str) -> Case {
        self.arn = arn;
        self
    }
    fn key(mut self, name: &'static str, value: &'static str) -> Case {
        self.keys.push((name, vec![value]));
        self
    }
    fn keys(mut self, name: &'static str, values: &[&'static str]) -> Case {
        self.keys.push((name, values.to_vec()));
        self
    }
}

/// An identity policy: one statement with `effect`, `action`, `resource`.
fn stmt(effect: &str, action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}}}"#
    )
}

/// An identity policy allowing `ecs:RunTask` on `*` under `condition`.
fn allow_if(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*","Condition":{condition}}}}}"#
    )
}

/// An identity policy denying `ecs:RunTask` on `*` under `condition`.
fn deny_if(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Deny","Action":"ecs:RunTask","Resource":"*","Condition":{condition}}}}}"#
    )
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;

/// "Example identity-based and resource-based policy evaluation".
const CARLOS_IDENTITY: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AllowS3ListRead", "Effect": "Allow",
         "Action": ["s3:GetBucketLocation", "s3:GetAccountPublicAccessBlock", "s3:ListAccessPoints", "s3:ListAllMyBuckets"],
         "Resource": "arn:aws:s3:::*"},
        {"Sid": "AllowS3Self", "Effect": "Allow", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"]},
        {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"}
    ]
}"#;

const CARLOS_BUCKET: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:user/carlossalazar"},
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"]
    }]
}"#;

const CARLOS: &str = "arn:aws:iam::123456789012:user/carlossalazar";

/// "The difference between explicit and implicit denies".
const GET_LIST_NO_REPORTS: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
        {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"}
    ]
}"#;

/// "Variables and tags": each user's home in a bucket.
const HOME: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [
        {"Action": ["s3:ListBucket"], "Effect": "Allow", "Resource": ["arn:aws:s3:::mybucket"],
         "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*"]}}},
        {"Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow",
         "Resource": ["arn:aws:s3:::mybucket/${aws:username}/*"]}
    ]
}"#;

/// The same policy without `Version`: variables are literal text.
const HOME_2008: &str = r#"{
    "Statement": {"Action": "s3:GetObject", "Effect": "Allow",
                  "Resource": "arn:aws:s3:::mybucket/${aws:username}/*"}
}"#;

/// "Condition operators", `...IfExists`.
const INSTANCE_TYPES: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "RunInstance", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
        "Condition": {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}
    }]
}"#;

/// "Set operators": only these attributes may be read.
const READ_ATTRIBUTES: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow", "Action": "dynamodb:GetItem",
        "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/Thread",
        "Condition": {"ForAllValues:StringLike": {"dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]}}
    }]
}"#;

/// "Set operators": these attributes may not be written.
const DENY_WRITE_ATTRIBUTES: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Deny", "Action": "dynamodb:PutItem",
        "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/Thread",
        "Condition": {"ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}}
    }]
}"#;

const THREAD: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/Thread";

/// "Multivalued context keys": deny tagging unless every key starts `key1`.
const DENY_TAG_KEYS: &str = r#"{
    "Version": "2012-10-17",
    "Statement": {"Sid": "DenyRestrictedTags", "Effect": "Deny", "Action": ["iam:Tag*", "iam:UnTag*"],
                  "Resource": ["*"], "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}}
}"#;

/// "Condition operators", Bool: deny S3 without TLS.
const DENY_INSECURE: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [{"Sid": "BooleanExample", "Action": "s3:*", "Effect": "Deny",
                   "Resource": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"],
                   "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
}"#;

fn evaluation_cases() -> Vec<Case> {
    vec![
        // --- Allow, implicit deny, explicit deny ------------------------
        case("allow: the action is named", ALLOW).id(&stmt("Allow", "ecs:RunTask", "*")),
        case("implicit deny: another action is named", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:StopTask", "*")),
        case("implicit deny: no policy at all", NO_IDENTITY),
        case("explicit deny in one policy beats an allow in another", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(&stmt("Deny", "ecs:RunTask", "*")),
        case("Carlos: the logs bucket is explicitly denied", DENY_IDENTITY)
            .id(CARLOS_IDENTITY)
            .res(CARLOS_BUCKET)
            .by(CARLOS)
            .act("s3:PutObject")
            .on("arn:aws:s3:::carlossalazar-logs/file.txt"),
        case("Carlos: his own bucket is allowed", ALLOW)
            .id(CARLOS_IDENTITY)
            .res(CARLOS_BUCKET)
            .by(CARLOS)
            .act("s3:PutObject")
            .on("arn:aws:s3:::carlossalazar/file.txt"),
        case("Get*/List* allowed", ALLOW).id(GET_LIST_NO_REPORTS).act("iam:GetUser"),
        case("*Report denied even with iam:* elsewhere", DENY_IDENTITY)
            .id(GET_LIST_NO_REPORTS)
            .id(&stmt("Allow", "iam:*", "*"))
            .act("iam:GetOrganizationsAccessReport"),
        case("iam:CreatePolicy implicitly denied", NO_IDENTITY)
            .id(GET_LIST_NO_REPORTS)
            .act("iam:CreatePolicy"),
        // --- Action wildcards and case ------------------------------------
        case("ecs:Describe* names DescribeServices", ALLOW)
            .id(&stmt("Allow", "ecs:Describe*", "*"))
            .act("ecs:DescribeServices"),
        case("ecs:Describe* does not name ListClusters", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:Describe*", "*"))
            .act("ecs:ListClusters"),
        case("ecs:* names RunTask", ALLOW).id(&stmt("Allow", "ecs:*", "*")),
        case("ecs:* does not name ecr:GetAuthorizationToken", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:*", "*"))
            .act("ecr:GetAuthorizationToken"),
        case("* names every action", ALLOW).id(ALLOW_ALL).act("secretsmanager:GetSecretValue"),
        case("action names are case-insensitive (policy)", ALLOW)
            .id(&stmt("Allow", "ECS:runtask", "*")),
        case("action names are case-insensitive (request)", ALLOW)
            .id(&stmt("Allow", "ecs:Run*", "*"))
            .act("EcS:RUNTASK"),
        case("? is one character in an action", ALLOW).id(&stmt("Allow", "ecs:?unTask", "*")),
        case("? is exactly one character", NO_IDENTITY).id(&stmt("Allow", "ecs:?Task", "*")),
        // --- NotAction ---------------------------------------------------
        case("Allow NotAction: another service is allowed", ALLOW)
            .id(&stmt("Allow", "iam:*", "*").replace("\"Action\"", "\"NotAction\"")),
        case("Allow NotAction: the excluded service is not", NO_IDENTITY)
            .id(&stmt("Allow", "iam:*", "*").replace("\"Action\"", "\"NotAction\""))
            .act("iam:CreateUser"),
        case("Deny NotAction: everything but ECS is denied", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(&stmt("Deny", "ecs:*", "*").replace("\"Action\"", "\"NotAction\""))
            .act("s3:GetObject"),
        case("Deny NotAction: ECS is not denied", ALLOW)
            .id(ALLOW_ALL)
            .id(&stmt("Deny", "ecs:*", "*").replace("\"Action\"", "\"NotAction\"")),
        // --- Resources -----------------------------------------------------
        case("resource wildcard in the resource part", ALLOW)
            .id(&stmt("Allow", "ecs:*", "arn:aws:ecs:*:123456789012:cluster/*"))
            .on(CLUSTER),
        case("resource wildcard does not name another resource type", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:*", "arn:aws:ecs:*:123456789012:cluster/*"))
            .on("arn:aws:ecs:us-east-1:123456789012:service/prod/web"),
        case("a wildcard in the region does not cross colons (documented example)", NO_IDENTITY)
            .id(&stmt("Allow", "someservice:*", "arn:aws:someservice:*:111122223333:finance/*"))
            .act("someservice:Read")
            .on("arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"),
        case("the same pattern names the account's finance resource", ALLOW)
            .id(&stmt("Allow", "someservice:*", "arn:aws:someservice:*:111122223333:finance/*"))
            .act("someservice:Read")
            .on("arn:aws:someservice:us-east-2:111122223333:finance/document.txt"),
        case("a wildcard in the resource part crosses colons", ALLOW)
            .id(&stmt("Allow", "logs:*", "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/*"))
            .act("logs:PutLogEvents")
            .on("arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web:log-stream:x"),
        case("? in a resource", ALLOW)
            .id(&stmt("Allow", "ecs:*", "arn:aws:ecs:us-east-?:123456789012:cluster/prod"))
            .on(CLUSTER),
        case("resources are case-sensitive", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:*", "arn:aws:ecs:us-east-1:123456789012:cluster/Prod"))
            .on(CLUSTER),
        case("a specific ARN does not name the resource *", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:*", CLUSTER)),
        case("NotResource: another bucket is allowed", ALLOW)
            .id(&stmt("Allow", "s3:*", "arn:aws:s3:::secret/*").replace("\"Resource\"", "\"NotResource\""))
            .act("s3:GetObject")
            .on("arn:aws:s3:::public/a.txt"),
        case("NotResource: the excluded bucket is not", NO_IDENTITY)
            .id(&stmt("Allow", "s3:*", "arn:aws:s3:::secret/*").replace("\"Resource\"", "\"NotResource\""))
            .act("s3:GetObject")
            .on("arn:aws:s3:::secret/a.txt"),
        case("Deny NotResource: everything outside the bucket is denied", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(&stmt("Deny", "s3:*", "arn:aws:s3:::mine/*").replace("\"Resource\"", "\"NotResource\""))
            .act("s3:GetObject")
            .on("arn:aws:s3:::theirs/a.txt"),
        // --- String operators ---------------------------------------------
        case("StringEquals: match", ALLOW)
            .id(&allow_if(r#"{"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}"#))
            .key("aws:PrincipalTag/job-category", "iamuser-admin"),
        case("StringEquals: other value", NO_IDENTITY)
            .id(&allow_if(r#"{"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}"#))
            .key("aws:PrincipalTag/job-category", "developer"),
        case("StringEquals: values are case-sensitive", NO_IDENTITY)
            .id(&allow_if(r#"{"StringEquals": {"aws:username": "alice"}}"#))
            .key("aws:username", "Alice"),
        case("StringEquals: key names are case-insensitive", ALLOW)
            .id(&allow_if(r#"{"StringEquals": {"AWS:USERNAME": "alice"}}"#))
            .key("aws:UserName", "alice"),
        case("StringEquals: absent key is false", NO_IDENTITY)
            .id(&allow_if(r#"{"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}"#)),
        case("StringEquals: several values are ORed", ALLOW)
            .id(&allow_if(r#"{"StringEquals": {"ecs:cluster": ["dev", "prod"]}}"#))
            .key("ecs:cluster", "prod"),
        case("StringNotEquals: other value", ALLOW)
            .id(&allow_if(r#"{"StringNotEquals": {"ecs:cluster": "prod"}}"#))
            .key("ecs:cluster", "dev"),
        case("StringNotEquals: the value", NO_IDENTITY)
            .id(&allow_if(r#"{"StringNotEquals": {"ecs:cluster": "prod"}}"#))
            .key("ecs:cluster", "prod"),
        case("StringNotEquals: absent key is true (documented)", ALLOW)
            .id(&allow_if(r#"{"StringNotEquals": {"ecs:cluster": "prod"}}"#)),
        case("StringNotEquals with several values matches none of them", NO_IDENTITY)
            .id(&allow_if(r#"{"StringNotEquals": {"ecs:cluster": ["dev", "prod"]}}"#))
            .key("ecs:cluster", "prod"),
        case("StringNotEquals with several values: a third value", ALLOW)
            .id(&allow_if(r#"{"StringNotEquals": {"ecs:cluster": ["dev", "prod"]}}"#))
            .key("ecs:cluster", "test"),
        case("StringEqualsIgnoreCase: match", ALLOW)
            .id(&allow_if(r#"{"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}"#))
            .key("aws:PrincipalTag/team", "Blue"),
        case("StringEqualsIgnoreCase: other value", NO_IDENTITY)
            .id(&allow_if(r#"{"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}"#))
            .key("aws:PrincipalTag/team", "green"),
        case("StringNotEqualsIgnoreCase: same but for case", NO_IDENTITY)
            .id(&allow_if(r#"{"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}"#))
            .key("aws:PrincipalTag/team", "blue"),
        case("StringNotEqualsIgnoreCase: other value", ALLOW)
            .id(&allow_if(r#"{"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}"#))
            .key("aws:PrincipalTag/team", "green"),
        case("StringLike: match", ALLOW)
            .id(&allow_if(r#"{"StringLike": {"s3:prefix": ["", "home/", "home/*"]}}"#))
            .key("s3:prefix", "home/alice/docs"),
        case("StringLike: no match", NO_IDENTITY)
            .id(&allow_if(r#"{"StringLike": {"s3:prefix": ["", "home/", "home/*"]}}"#))
            .key("s3:prefix", "etc/passwd"),
        case("StringLike: ? is one character", ALLOW)
            .id(&allow_if(r#"{"StringLike": {"ec2:InstanceType": "t?.micro"}}"#))
            .key("ec2:InstanceType", "t3.micro"),
        case("StringLike: wildcards are case-sensitive", NO_IDENTITY)
            .id(&allow_if(r#"{"StringLike": {"ec2:InstanceType": "t*"}}"#))
            .key("ec2:InstanceType", "T3.micro"),
        case("StringNotLike: match", NO_IDENTITY)
            .id(&allow_if(r#"{"StringNotLike": {"s3:prefix": "private/*"}}"#))
            .key("s3:prefix", "private/x"),
        case("StringNotLike: no match", ALLOW)
            .id(&allow_if(r#"{"StringNotLike": {"s3:prefix": "private/*"}}"#))
            .key("s3:prefix", "public/x"),
        case("StringNotLike: absent key is true", ALLOW)
            .id(&allow_if(r#"{"StringNotLike": {"s3:prefix": "private/*"}}"#)),
        case("several keys in one operator are ANDed", NO_IDENTITY)
            .id(&allow_if(r#"{"StringEquals": {"ecs:cluster": "prod", "aws:PrincipalTag/team": "blue"}}"#))
            .key("ecs:cluster", "prod")
            .key("aws:PrincipalTag/team", "green"),
        case("several keys in one operator: all match", ALLOW)
            .id(&allow_if(r#"{"StringEquals": {"ecs:cluster": "prod", "aws:PrincipalTag/team": "blue"}}"#))
            .key("ecs:cluster", "prod")
            .key("aws:PrincipalTag/team", "blue"),
        case("several operators are ANDed", NO_IDENTITY)
            .id(&allow_if(
                r#"{"StringEquals": {"ecs:cluster": "prod"}, "Bool": {"aws:SecureTransport": "true"}}"#,
            ))
            .key("ecs:cluster", "prod")
            .key("aws:SecureTransport", "false"),
        case("a multivalued key without qualifier: any value", ALLOW)
            .id(&allow_if(r#"{"StringEquals": {"aws:TagKeys": "team"}}"#))
            .keys("aws:TagKeys", &["owner", "team"]),
        // --- Numeric -------------------------------------------------------
        case("NumericLessThanEquals: 10 <= 10", ALLOW)
            .id(&allow_if(r#"{"NumericLessThanEquals": {"s3:max-keys": "10"}}"#))
            .key("s3:max-keys", "10"),
        case("NumericLessThanEquals: 11 > 10", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericLessThanEquals": {"s3:max-keys": "10"}}"#))
            .key("s3:max-keys", "11"),
        case("NumericEquals: a JSON number, decimals", ALLOW)
            .id(&allow_if(r#"{"NumericEquals": {"ecs:count": 2}}"#))
            .key("ecs:count", "2.0"),
        case("NumericEquals: other number", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericEquals": {"ecs:count": 2}}"#))
            .key("ecs:count", "3"),
        case("NumericEquals: not a number", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericEquals": {"ecs:count": 2}}"#))
            .key("ecs:count", "two"),
        case("NumericNotEquals: other number", ALLOW)
            .id(&allow_if(r#"{"NumericNotEquals": {"ecs:count": "2"}}"#))
            .key("ecs:count", "3"),
        case("NumericNotEquals: same number", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericNotEquals": {"ecs:count": "2"}}"#))
            .key("ecs:count", "2"),
        case("NumericLessThan: less", ALLOW)
            .id(&allow_if(r#"{"NumericLessThan": {"ecs:count": "5"}}"#))
            .key("ecs:count", "4.5"),
        case("NumericLessThan: equal is not less", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericLessThan": {"ecs:count": "5"}}"#))
            .key("ecs:count", "5"),
        case("NumericGreaterThan: greater", ALLOW)
            .id(&allow_if(r#"{"NumericGreaterThan": {"ecs:count": "5"}}"#))
            .key("ecs:count", "6"),
        case("NumericGreaterThan: less", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericGreaterThan": {"ecs:count": "5"}}"#))
            .key("ecs:count", "-6"),
        case("NumericGreaterThanEquals: equal", ALLOW)
            .id(&allow_if(r#"{"NumericGreaterThanEquals": {"ecs:count": "5"}}"#))
            .key("ecs:count", "5"),
        case("NumericGreaterThanEquals: less", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericGreaterThanEquals": {"ecs:count": "5"}}"#))
            .key("ecs:count", "4"),
        // --- Date ----------------------------------------------------------
        case("DateGreaterThan: token issued in 2020", ALLOW)
            .id(&allow_if(r#"{"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}"#))
            .key("aws:TokenIssueTime", "2020-06-01T12:00:00Z"),
        case("DateGreaterThan: token issued before", NO_IDENTITY)
            .id(&allow_if(r#"{"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}"#))
            .key("aws:TokenIssueTime", "2019-12-31T23:59:59Z"),
        case("DateGreaterThan: absent key (user credentials)", NO_IDENTITY)
            .id(&allow_if(r#"{"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}"#)),
        case("DateLessThan: ISO policy, epoch request", ALLOW)
            .id(&allow_if(r#"{"DateLessThan": {"aws:EpochTime": "2030-01-01T00:00:00Z"}}"#))
            .key("aws:EpochTime", "1700000000"),
        case("DateLessThan: epoch policy, ISO request, after", NO_IDENTITY)
            .id(&allow_if(r#"{"DateLessThan": {"aws:CurrentTime": 1577836800}}"#))
            .key("aws:CurrentTime", "2020-01-01T00:00:01Z"),
        case("DateLessThanEquals: the same instant in two zones", ALLOW)
            .id(&allow_if(r#"{"DateLessThanEquals": {"aws:CurrentTime": "2020-01-01T01:00:00+01:00"}}"#))
            .key("aws:CurrentTime", "2020-01-01T00:00:00Z"),
        case("DateLessThanEquals: one second later", NO_IDENTITY)
            .id(&allow_if(r#"{"DateLessThanEquals": {"aws:CurrentTime": "2020-01-01T01:00:00+01:00"}}"#))
            .key("aws:CurrentTime", "2020-01-01T00:00:01Z"),
        case("DateEquals: a date is its midnight", ALLOW)
            .id(&allow_if(r#"{"DateEquals": {"aws:CurrentTime": "2020-01-01"}}"#))
            .key("aws:CurrentTime", "1577836800"),
        case("DateEquals: another instant", NO_IDENTITY)
            .id(&allow_if(r#"{"DateEquals": {"aws:CurrentTime": "2020-01-01"}}"#))
            .key("aws:CurrentTime", "1577836801"),
        case("DateNotEquals: another instant", ALLOW)
            .id(&allow_if(r#"{"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#))
            .key("aws:CurrentTime", "2021-01-01T00:00:00Z"),
        case("DateNotEquals: the instant", NO_IDENTITY)
            .id(&allow_if(r#"{"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#))
            .key("aws:CurrentTime", "2020-01-01T00:00:00.000Z"),
        case("DateGreaterThanEquals: the instant", ALLOW)
            .id(&allow_if(r#"{"DateGreaterThanEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#))
            .key("aws:CurrentTime", "2020-01-01T00:00:00Z"),
        case("DateGreaterThanEquals: before", NO_IDENTITY)
            .id(&allow_if(r#"{"DateGreaterThanEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#))
            .key("aws:CurrentTime", "2019-01-01T00:00:00Z"),
        case("Date: a request value that is no date", NO_IDENTITY)
            .id(&allow_if(r#"{"DateGreaterThanEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#))
            .key("aws:CurrentTime", "tomorrow"),
        // --- Bool, Binary --------------------------------------------------
        case("Bool: deny S3 without TLS", Decision::ExplicitDeny(PolicyType::Identity))
            .id(ALLOW_ALL)
            .id(DENY_INSECURE)
            .act("s3:GetObject")
            .on("arn:aws:s3:::DOC-EXAMPLE-BUCKET/a.txt")
            .key("aws:SecureTransport", "false"),
        case("Bool: TLS is not denied", ALLOW)
            .id(ALLOW_ALL)
            .id(DENY_INSECURE)
            .act("s3:GetObject")
            .on("arn:aws:s3:::DOC-EXAMPLE-BUCKET/a.txt")
            .key("aws:SecureTransport", "true"),
        case("Bool: a JSON boolean in the policy", ALLOW)
            .id(&allow_if(r#"{"Bool": {"aws:MultiFactorAuthPresent": true}}"#))
            .key("aws:MultiFactorAuthPresent", "true"),
        case("Bool: MFA absent", NO_IDENTITY)
            .id(&allow_if(r#"{"Bool": {"aws:MultiFactorAuthPresent": true}}"#)),
        case("BinaryEquals: the bytes", ALLOW)
            .id(&allow_if(r#"{"BinaryEquals": {"ecs:blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#))
            .key("ecs:blob", "BinaryValueInBase64"),
        case("BinaryEquals: other bytes", NO_IDENTITY)
            .id(&allow_if(r#"{"BinaryEquals": {"ecs:blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#))
            .key("ecs:blob", "QmluYXJ5VmFsdWVJbkJhc2U2NA=="),
        // --- IP addresses --------------------------------------------------
        case("IpAddress: IPv4 in the range", ALLOW)
            .id(&allow_if(r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#))
            .key("aws:SourceIp", "203.0.113.200"),
        case("IpAddress: IPv4 out of the range", NO_IDENTITY)
            .id(&allow_if(r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#))
            .key("aws:SourceIp", "198.51.100.7"),
        case("IpAddress: IPv6 in the range (mixed list)", ALLOW)
            .id(&allow_if(r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}"#))
            .key("aws:SourceIp", "2001:db8:1234:5678:0:0:0:42"),
        case("IpAddress: IPv6 out of the range", NO_IDENTITY)
            .id(&allow_if(r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}"#))
            .key("aws:SourceIp", "2001:db8:1234:9999::42"),
        case("IpAddress: an address without prefix is /32", NO_IDENTITY)
            .id(&allow_if(r#"{"IpAddress": {"aws:SourceIp": "203.0.113.1"}}"#))
            .key("aws:SourceIp", "203.0.113.2"),
        case("IpAddress: absent key (VPC endpoint)", NO_IDENTITY)
            .id(&allow_if(r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#)),
        case("NotIpAddress: outside", ALLOW)
            .id(&allow_if(r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#))
            .key("aws:SourceIp", "192.0.2.1"),
        case("NotIpAddress: inside", NO_IDENTITY)
            .id(&allow_if(r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#))
            .key("aws:SourceIp", "10.1.2.3"),
        // --- ARN operators -------------------------------------------------
        case("ArnEquals: the topic", ALLOW)
            .id(&allow_if(r#"{"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:topic"}}"#))
            .key("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:topic"),
        case("ArnEquals: another topic", NO_IDENTITY)
            .id(&allow_if(r#"{"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:topic"}}"#))
            .key("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:other"),
        case("ArnLike: fields matched separately (documented example)", NO_IDENTITY)
            .id(&allow_if(r#"{"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}"#))
            .key(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            ),
        case("StringLike matches where ArnLike does not (same example)", ALLOW)
            .id(&allow_if(r#"{"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}"#))
            .key(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            ),
        case("ArnLike: match", ALLOW)
            .id(&allow_if(r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/*"}}"#)),
        case("ArnNotEquals: another ARN", ALLOW)
            .id(&allow_if(r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/bob"}}"#)),
        case("ArnNotEquals: the ARN", NO_IDENTITY)
            .id(&allow_if(r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/alice"}}"#)),
        case("ArnNotLike: match", NO_IDENTITY)
            .id(&allow_if(r#"{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a*"}}"#)),
        case("ArnNotLike: no match", ALLOW)
            .id(&allow_if(r#"{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}"#)),
        // --- IfExists, Null ------------------------------------------------
        case("StringLikeIfExists: absent key", ALLOW)
            .id(INSTANCE_TYPES)
            .act("ec2:RunInstances")
            .on("arn:aws:ec2:us-east-1::image/ami-1"),
        case("StringLikeIfExists: allowed type", ALLOW)
            .id(INSTANCE_TYPES)
            .act("ec2:RunInstances")
            .key("ec2:InstanceType", "t2.micro"),
        case("StringLikeIfExists: other type", NO_IDENTITY)
            .id(INSTANCE_TYPES)
            .act("ec2:RunInstances")
            .key("ec2:InstanceType", "m5.large"),
        case("StringNotEqualsIfExists with Deny: absent key still denies", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(&deny_if(r#"{"StringNotEqualsIfExists": {"aws:ResourceTag/team": "blue"}}"#)),
        case("StringNotEqualsIfExists with Deny: the value does not deny", ALLOW)
            .id(ALLOW_ALL)
            .id(&deny_if(r#"{"StringNotEqualsIfExists": {"aws:ResourceTag/team": "blue"}}"#))
            .key("aws:ResourceTag/team", "blue"),
        case("NumericLessThanIfExists: present and too big", NO_IDENTITY)
            .id(&allow_if(r#"{"NumericLessThanIfExists": {"ecs:count": "3"}}"#))
            .key("ecs:count", "7"),
        case("Null true: key absent (long-term credentials)", ALLOW)
            .id(&allow_if(r#"{"Null": {"aws:TokenIssueTime": "true"}}"#)),
        case("Null true: key present (temporary credentials)", NO_IDENTITY)
            .id(&allow_if(r#"{"Null": {"aws:TokenIssueTime": "true"}}"#))
            .key("aws:TokenIssueTime", "2020-01-01T00:00:00Z"),
        case("Null false: key present", ALLOW)
            .id(&allow_if(r#"{"Null": {"aws:ResourceTag/team": false}}"#))
            .key("aws:ResourceTag/team", "blue"),
        case("Null false: key present but empty", NO_IDENTITY)
            .id(&allow_if(r#"{"Null": {"aws:TagKeys": "false"}}"#))
            .keys("aws:TagKeys", &[]),
        // --- Set operators -------------------------------------------------
        case("ForAllValues: every requested attribute is listed", ALLOW)
            .id(READ_ATTRIBUTES)
            .act("dynamodb:GetItem")
            .on(THREAD)
            .keys("dynamodb:requestedAttributes", &["PostDateTime", "Message"]),
        case("ForAllValues: UserName is not listed", NO_IDENTITY)
            .id(READ_ATTRIBUTES)
            .act("dynamodb:GetItem")
            .on(THREAD)
            .keys("dynamodb:requestedAttributes", &["PostDateTime", "UserName"]),
        case("ForAllValues: absent key is true", ALLOW)
            .id(READ_ATTRIBUTES)
            .act("dynamodb:GetItem")
            .on(THREAD),
        case("ForAllValues: empty set is true", ALLOW)
            .id(READ_ATTRIBUTES)
            .act("dynamodb:GetItem")
            .on(THREAD)
            .keys("dynamodb:requestedAttributes", &[]),
        case("ForAnyValue: PostDateTime is among the attributes", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(DENY_WRITE_ATTRIBUTES)
            .act("dynamodb:PutItem")
            .on(THREAD)
            .keys("dynamodb:requestedAttributes", &["UserName", "Message", "PostDateTime"]),
        case("ForAnyValue: only UserName", ALLOW)
            .id(ALLOW_ALL)
            .id(DENY_WRITE_ATTRIBUTES)
            .act("dynamodb:PutItem")
            .on(THREAD)
            .keys("dynamodb:requestedAttributes", &["UserName"]),
        case("ForAnyValue: absent key is false", ALLOW)
            .id(ALLOW_ALL)
            .id(DENY_WRITE_ATTRIBUTES)
            .act("dynamodb:PutItem")
            .on(THREAD),
        case("ForAnyValue: empty set is false", NO_IDENTITY)
            .id(&allow_if(r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "owner"]}}"#))
            .keys("aws:TagKeys", &[]),
        case("ForAnyValue: one tag key listed", ALLOW)
            .id(&allow_if(r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "owner"]}}"#))
            .keys("aws:TagKeys", &["cost", "team"]),
        case("ForAllValues:StringNotLike deny: key1:legal is not denied", ALLOW)
            .id(ALLOW_ALL)
            .id(DENY_TAG_KEYS)
            .act("iam:TagUser")
            .keys("aws:TagKeys", &["key1:legal"]),
        case("ForAllValues:StringNotLike deny: key2:audit is denied", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(DENY_TAG_KEYS)
            .act("iam:TagUser")
            .keys("aws:TagKeys", &["key2:audit"]),
        case("ForAllValues:StringNotLike deny: no tag keys is denied", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(DENY_TAG_KEYS)
            .act("iam:TagUser"),
        // --- Policy variables ----------------------------------------------
        case("variable in Resource: the user's home", ALLOW)
            .id(HOME)
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/alice/notes.txt")
            .key("aws:username", "alice"),
        case("variable in Resource: another user's home", NO_IDENTITY)
            .id(HOME)
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/bob/notes.txt")
            .key("aws:username", "alice"),
        case("variable in Resource: missing key, statement does not apply", NO_IDENTITY)
            .id(HOME)
            .by(SESSION)
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/${aws:username}/notes.txt"),
        case("variable missing in a Deny: the Deny does not apply", ALLOW)
            .id(ALLOW_ALL)
            .id(&deny_if(r#"{"StringNotEquals": {"ecs:cluster": "${aws:PrincipalTag/cluster}"}}"#))
            .key("ecs:cluster", "prod"),
        case("variable present in a Deny", DENY_IDENTITY)
            .id(ALLOW_ALL)
            .id(&deny_if(r#"{"StringNotEquals": {"ecs:cluster": "${aws:PrincipalTag/cluster}"}}"#))
            .key("ecs:cluster", "prod")
            .key("aws:PrincipalTag/cluster", "dev"),
        case("variable with a default", ALLOW)
            .id(&stmt("Allow", "s3:GetObject", "arn:aws:s3:::mybucket/${aws:userid, 'anonymous'}/*"))
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/anonymous/a.txt"),
        case("variable with a default, key present", NO_IDENTITY)
            .id(&stmt("Allow", "s3:GetObject", "arn:aws:s3:::mybucket/${aws:userid, 'anonymous'}/*"))
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/anonymous/a.txt")
            .key("aws:userid", "AIDAEXAMPLE"),
        case("variable in a condition value", ALLOW)
            .id(HOME)
            .act("s3:ListBucket")
            .on("arn:aws:s3:::mybucket")
            .key("aws:username", "alice")
            .key("s3:prefix", "alice/photos"),
        case("variable in a condition value: another prefix", NO_IDENTITY)
            .id(HOME)
            .act("s3:ListBucket")
            .on("arn:aws:s3:::mybucket")
            .key("aws:username", "alice")
            .key("s3:prefix", "bob/photos"),
        case("a variable's value is literal, not a wildcard", NO_IDENTITY)
            .id(HOME)
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/bob/notes.txt")
            .key("aws:username", "*"),
        case("a principal tag as a variable", ALLOW)
            .id(&stmt("Allow", "s3:*", "arn:aws:s3:::bucket/${aws:PrincipalTag/department}"))
            .act("s3:GetObject")
            .on("arn:aws:s3:::bucket/finance")
            .key("aws:PrincipalTag/Department", "finance"),
        case("a multivalued key is no variable", NO_IDENTITY)
            .id(&allow_if(r#"{"StringEquals": {"ecs:cluster": "${aws:TagKeys}"}}"#))
            .key("ecs:cluster", "a")
            .keys("aws:TagKeys", &["a", "b"]),
        case("${*} is a literal asterisk", ALLOW)
            .id(&allow_if(r#"{"StringLike": {"ecs:cluster": "a${*}b"}}"#))
            .key("ecs:cluster", "a*b"),
        case("${*} is no wildcard", NO_IDENTITY)
            .id(&allow_if(r#"{"StringLike": {"ecs:cluster": "a${*}b"}}"#))
            .key("ecs:cluster", "axyzb"),
        case("${?} and ${$}", ALLOW)
            .id(&allow_if(r#"{"StringEquals": {"ecs:cluster": "${$}{x}${?}"}}"#))
            .key("ecs:cluster", "${x}?"),
        case("version 2008: variables are literal", NO_IDENTITY)
            .id(HOME_2008)
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/alice/a.txt")
            .key("aws:username", "alice"),
        case("version 2008: the literal text matches", ALLOW)
            .id(HOME_2008)
            .act("s3:GetObject")
            .on("arn:aws:s3:::mybucket/${aws:username}/a.txt")
            .key("aws:username", "alice"),
        // --- Resource policies -----------------------------------------------
        case("resource policy alone allows the named user", ALLOW)
            .res(CARLOS_BUCKET)
            .by(CARLOS)
            .act("s3:GetObject")
            .on("arn:aws:s3:::carlossalazar/a.txt"),
        case("resource policy naming another user", NO_IDENTITY)
            .res(CARLOS_BUCKET)
            .act("s3:GetObject")
            .on("arn:aws:s3:::carlossalazar/a.txt"),
        case("resource policy Deny beats an identity Allow", DENY_RESOURCE)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"ecr:*"}}"#)
            .act("ecr:BatchGetImage")
            .on("arn:aws:ecr:us-east-1:123456789012:repository/web"),
        case("resource policy Principal * allows anyone", ALLOW)
            .res(r#"{"Version":"2012-10-17","Statement":{"Sid":"public pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}}"#)
            .by(BOB)
            .act("ecr:BatchGetImage")
            .on("arn:aws:ecr:us-east-1:123456789012:repository/web"),
        case("resource policy naming the account delegates: no grant alone", NO_IDENTITY)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"ecr:*"}}"#)
            .act("ecr:BatchGetImage")
            .on("arn:aws:ecr:us-east-1:123456789012:repository/web"),
        case("resource policy naming the account, identity allows", ALLOW)
            .id(&stmt("Allow", "ecr:*", "*"))
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"ecr:*"}}"#)
            .act("ecr:BatchGetImage")
            .on("arn:aws:ecr:us-east-1:123456789012:repository/web"),
        case("resource policy Deny naming the account applies to its users", DENY_RESOURCE)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:DeleteSecret"}}"#)
            .act("secretsmanager:DeleteSecret")
            .on("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
        case("resource policy Deny naming another account", ALLOW)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"999999999999"},"Action":"*"}}"#),
        case("resource policy statement for another resource", NO_IDENTITY)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}}"#)
            .act("s3:GetObject")
            .on("arn:aws:s3:::carlossalazar/a.txt"),
        case("resource policy naming the role: the session is allowed", ALLOW)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue"}}"#)
            .by(SESSION)
            .act("secretsmanager:GetSecretValue")
            .on("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
        case("resource policy naming the role: another role's session", NO_IDENTITY)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue"}}"#)
            .by(OTHER_SESSION)
            .act("secretsmanager:GetSecretValue"),
        case("resource policy naming the role (with a path)", ALLOW)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/service/app"},"Action":"secretsmanager:GetSecretValue"}}"#)
            .by(SESSION)
            .act("secretsmanager:GetSecretValue"),
        case("resource policy naming the role is limited by the boundary", NO_BOUNDARY)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue"}}"#)
            .boundary(&stmt("Allow", "ecs:*", "*"))
            .by(SESSION)
            .act("secretsmanager:GetSecretValue"),
        case("resource policy naming the role is limited by the session policy", NO_SESSION)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue"}}"#)
            .session(&stmt("Allow", "ecs:*", "*"))
            .by(SESSION)
            .act("secretsmanager:GetSecretValue"),
        case("resource policy naming the session is not limited by the session policy", ALLOW)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::123456789012:assumed-role/app/i-0abc"},"Action":"secretsmanager:GetSecretValue"}}"#)
            .session(&stmt("Allow", "ecs:*", "*"))
            .by(SESSION)
            .act("secretsmanager:GetSecretValue"),
        case("resource policy naming the user is not limited by the boundary", ALLOW)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"ecr:*"}}"#)
            .boundary(&stmt("Allow", "ecs:*", "*"))
            .act("ecr:BatchGetImage"),
        case("resource policy naming the federating user is limited by the session policy", NO_SESSION)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"ecr:*"}}"#)
            .by("arn:aws:sts::123456789012:federated-user/alice")
            .empty_session()
            .act("ecr:BatchGetImage"),
        case("NotPrincipal Deny: everyone but alice is denied", DENY_RESOURCE)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:user/alice"]},"Action":"s3:*"}}"#)
            .by(BOB)
            .act("s3:GetObject"),
        case("NotPrincipal Deny: alice is not denied", ALLOW)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:user/alice"]},"Action":"s3:*"}}"#)
            .act("s3:GetObject"),
        case("Principal * with aws:PrincipalArn condition", DENY_RESOURCE)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:*","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/alice"}}}}"#)
            .by(BOB)
            .act("s3:GetObject"),
        case("a resource policy statement for another caller does not apply", ALLOW)
            .id(ALLOW_ALL)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"*"}}"#),
        // --- Root -----------------------------------------------------------------
        case("the root user needs no policy", ALLOW).by(ROOT),
        case("the root user is subject to explicit denies", DENY_RESOURCE)
            .res(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:DeleteRepository"}}"#)
            .by(ROOT)
            .act("ecr:DeleteRepository"),
        // --- Permissions boundaries ----------------------------------------
        case("boundary allows too", ALLOW)
            .id(&stmt("Allow", "ecs:*", "*"))
            .boundary(&stmt("Allow", "ecs:*", "*")),
        case("boundary does not allow", NO_BOUNDARY)
            .id(&stmt("Allow", "ecs:*", "*"))
            .boundary(&stmt("Allow", "ecs:Describe*", "*")),
        case("boundary allows but identity does not", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:Describe*", "*"))
            .boundary(ALLOW_ALL),
        case("boundary explicit deny", DENY_BOUNDARY)
            .id(ALLOW_ALL)
            .boundary(ALLOW_ALL)
            .boundary(&stmt("Deny", "ecs:RunTask", "*")),
        // --- Session policies ------------------------------------------------
        case("session policy allows too", ALLOW)
            .id(&stmt("Allow", "ecs:*", "*"))
            .session(&stmt("Allow", "ecs:RunTask", "*"))
            .by(SESSION),
        case("session policy does not allow", NO_SESSION)
            .id(&stmt("Allow", "ecs:*", "*"))
            .session(&stmt("Allow", "ecs:RunTask", "*"))
            .by(SESSION)
            .act("ecs:CreateCluster"),
        case("session policy allows but the role does not", NO_IDENTITY)
            .id(&stmt("Allow", "ecs:Describe*", "*"))
            .session(ALLOW_ALL)
            .by(SESSION),
        case("session policy explicit deny", DENY_SESSION)
            .id(ALLOW_ALL)
            .session(&stmt("Deny", "ecs:*", "*"))
            .by(SESSION),
        case("federated user session without session policy", NO_SESSION)
            .id(ALLOW_ALL)
            .empty_session()
            .by("arn:aws:sts::123456789012:federated-user/alice"),
        case("boundary and session both present, both allow", ALLOW)
            .id(ALLOW_ALL)
            .boundary(&stmt("Allow", "ecs:*", "*"))
            .session(&stmt("Allow", "ecs:RunTask", CLUSTER))
            .by(SESSION)
            .on(CLUSTER),
    ]
}

fn run(c: &Case) -> Result<Decision, String> {
    let parse = |text: &String, kind| {
        PolicyDocument::parse(text, kind).map_err(|e| format!("policy does not parse: {e}: {text}"))
    };
    let all = |texts: &[String], kind| {
        texts
            .iter()
            .map(|t| parse(t, kind))
            .collect::<Result<Vec<_>, _>>()
    };
    let identity = all(&c.identity, PolicyKind::Identity)?;
    let resource = all(&c.resource, PolicyKind::Resource)?;
    let boundary = c
        .boundary
        .as_deref()
        .map(|b| all(b, PolicyKind::Identity))
        .transpose()?;
    let session = c
        .session
        .as_deref()
        .map(|s| all(s, PolicyKind::Identity))
        .transpose()?;
    let policies = Policies {
        identity: identity.iter().collect(),
        resource: resource.iter().collect(),
        boundary: boundary.as_ref().map(|b| b.iter().collect()),
        session: session.as_ref().map(|s| s.iter().collect()),
    };
    let mut ctx = RequestContext::new(c.principal, c.action, c.arn);
    for (name, values) in &c.keys {
        ctx.keys.insert_all(name, values.iter().copied());
    }
    Ok(evaluate(&policies, &ctx))
}

#[test]
fn evaluation_table() {
    let cases = evaluation_cases();
    let mut failures = Vec::new();
    for c in &cases {
        match run(c) {
            Ok(got) if got == c.expect => {}
            Ok(got) => failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            )),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
    }
}

/// Rows whose expectation is flipped must fail: the table can fail.
#[test]
fn evaluation_table_detects_wrong_expectations() {
    for c in evaluation_cases() {
        let flipped = Case {
            expect: if c.expect == ALLOW {
                NO_IDENTITY
            } else {
                ALLOW
            },
            ..c.clone()
        };
        assert_ne!(run(&flipped).unwrap(), flipped.expect, "{}", c.name);
    }
}

// --- Trust policies ---------------------------------------------------------

struct TrustCase {
    name: &'static str,
    policy: &'static str,
    caller: Caller<'static>,
    action: &'static str,
    keys: &'static [(&'static str, &'static str)],
    expect: Decision,
}

const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_ACCOUNT_ID: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_ROLE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_USER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/alice"]},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
const TRUST_ECS_TASKS: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_SERVICES: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":["ecs.amazonaws.com","elasticloadbalancing.amazonaws.com"]},"Action":"sts:AssumeRole"}}"#;
const TRUST_EXTERNAL_ID: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"999999999999"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"Unique-Id-1234"}}}}"#;
const TRUST_DENY_BOB: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:*"},{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_GOOGLE: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"66677788899"}}}}"#;
const TRUST_ANYONE_IN_ORG_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}}}"#;

fn trust_cases() -> Vec<TrustCase> {
    let t = |name, policy, caller, action, keys, expect| TrustCase {
        name,
        policy,
        caller,
        action,
        keys,
        expect,
    };
    let ar = "sts:AssumeRole";
    vec![
        t(
            "account root admits the account's user",
            TRUST_ACCOUNT,
            Caller::Aws(ALICE),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "account root admits the account's role session",
            TRUST_ACCOUNT,
            Caller::Aws(SESSION),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "account root does not admit another account",
            TRUST_ACCOUNT,
            Caller::Aws(STRANGER),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "12-digit account id is the account root",
            TRUST_ACCOUNT_ID,
            Caller::Aws(BOB),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "12-digit account id: another account",
            TRUST_ACCOUNT_ID,
            Caller::Aws(STRANGER),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "role ARN admits the role's session",
            TRUST_ROLE,
            Caller::Aws(SESSION),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "role ARN does not admit another role's session",
            TRUST_ROLE,
            Caller::Aws(OTHER_SESSION),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "role ARN does not admit a user",
            TRUST_ROLE,
            Caller::Aws(ALICE),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "user ARN admits the user",
            TRUST_USER,
            Caller::Aws(ALICE),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "user ARN: sts:TagSession too",
            TRUST_USER,
            Caller::Aws(ALICE),
            "sts:TagSession",
            &[],
            TRUSTED,
        ),
        t(
            "user ARN does not admit another user",
            TRUST_USER,
            Caller::Aws(BOB),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "an action the policy does not name",
            TRUST_USER,
            Caller::Aws(ALICE),
            "sts:AssumeRoleWithWebIdentity",
            &[],
            NOT_TRUSTED,
        ),
        t(
            "service principal admitted",
            TRUST_ECS_TASKS,
            Caller::Service("ecs-tasks.amazonaws.com"),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "another service is not",
            TRUST_ECS_TASKS,
            Caller::Service("ec2.amazonaws.com"),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "a user is not a service principal",
            TRUST_ECS_TASKS,
            Caller::Aws(ALICE),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "one of several services",
            TRUST_SERVICES,
            Caller::Service("elasticloadbalancing.amazonaws.com"),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "external id matches",
            TRUST_EXTERNAL_ID,
            Caller::Aws(STRANGER),
            ar,
            &[("sts:ExternalId", "Unique-Id-1234")],
            TRUSTED,
        ),
        t(
            "external id differs",
            TRUST_EXTERNAL_ID,
            Caller::Aws(STRANGER),
            ar,
            &[("sts:ExternalId", "guess")],
            NOT_TRUSTED,
        ),
        t(
            "external id missing",
            TRUST_EXTERNAL_ID,
            Caller::Aws(STRANGER),
            ar,
            &[],
            NOT_TRUSTED,
        ),
        t(
            "external id key name in another case",
            TRUST_EXTERNAL_ID,
            Caller::Aws(STRANGER),
            ar,
            &[("STS:externalid", "Unique-Id-1234")],
            TRUSTED,
        ),
        t(
            "Deny in the trust policy",
            TRUST_DENY_BOB,
            Caller::Aws(BOB),
            ar,
            &[],
            DENY_TRUST,
        ),
        t(
            "Deny for bob does not touch alice",
            TRUST_DENY_BOB,
            Caller::Aws(ALICE),
            ar,
            &[],
            TRUSTED,
        ),
        t(
            "web identity with audience",
            TRUST_GOOGLE,
            Caller::Federated("accounts.google.com"),
            "sts:AssumeRoleWithWebIdentity",
            &[("accounts.google.com:aud", "66677788899")],
            TRUSTED,
        ),
        t(
            "web identity, wrong audience",
            TRUST_GOOGLE,
            Caller::Federated("accounts.google.com"),
            "sts:AssumeRoleWithWebIdentity",
            &[("accounts.google.com:aud", "1")],
            NOT_TRUSTED,
        ),
        t(
            "web identity, another provider",
            TRUST_GOOGLE,
            Caller::Federated("graph.facebook.com"),
            "sts:AssumeRoleWithWebIdentity",
            &[("accounts.google.com:aud", "66677788899")],
            NOT_TRUSTED,
        ),
        t(
            "Principal * with an account condition",
            TRUST_ANYONE_IN_ORG_ACCOUNT,
            Caller::Aws(BOB),
            ar,
            &[("aws:PrincipalAccount", "123456789012")],
            TRUSTED,
        ),
        t(
            "Principal * with an account condition: stranger",
            TRUST_ANYONE_IN_ORG_ACCOUNT,
            Caller::Aws(STRANGER),
            ar,
            &[("aws:PrincipalAccount", "999999999999")],
            NOT_TRUSTED,
        ),
    ]
}

#[test]
fn trust_table() {
    let mut failures = Vec::new();
    let cases = trust_cases();
    for c in &cases {
        let policy = match PolicyDocument::parse(c.policy, PolicyKind::Trust) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: policy does not parse: {e}", c.name));
                continue;
            }
        };
        let mut keys = ContextKeys::new();
        for (k, v) in c.keys {
            keys.insert(k, *v);
        }
        let got = evaluate_trust(&policy, c.caller, c.action, &keys);
        if got != c.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} trust cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// --- Malformed documents ----------------------------------------------------

struct BadCase {
    name: &'static str,
    kind: PolicyKind,
    text: &'static str,
    message: &'static str,
    reason: Option<Reason>,
}

fn bad_cases() -> Vec<BadCase> {
    use PolicyKind::{Identity, Resource, Trust};
    let b = |name, kind, text, message, reason| BadCase {
        name,
        kind,
        text,
        message,
        reason,
    };
    vec![
        b("missing Effect (identity)", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Action":"ecs:*","Resource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::MissingField("Effect"))),
        b("missing Effect (trust)", Trust,
          r#"{"Version":"2012-10-17","Statement":{"Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
          "Missing required field Effect", Some(Reason::MissingField("Effect"))),
        b("Principal in an identity policy", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecs:*","Resource":"*"}}"#,
          "Policy document should not specify a principal.", Some(Reason::ProhibitedField("Principal"))),
        b("NotPrincipal in an identity policy", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"ecs:*","Resource":"*"}}"#,
          "Policy document should not specify a principal.", Some(Reason::ProhibitedField("NotPrincipal"))),
        b("Resource in a trust policy", Trust,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}}"#,
          "Has prohibited field Resource", Some(Reason::ProhibitedField("Resource"))),
        b("missing Principal (trust)", Trust,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#,
          "Missing required field Principal", Some(Reason::MissingField("Principal"))),
        b("missing Principal (resource)", Resource,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*"}}"#,
          "Missing required field Principal", Some(Reason::MissingField("Principal"))),
        b("unknown condition operator", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}}"#,
          "Syntax errors in policy.", Some(Reason::UnknownOperator("StringEqualz".into()))),
        b("NullIfExists is no operator", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"NullIfExists":{"aws:username":"true"}}}}"#,
          "Syntax errors in policy.", Some(Reason::UnknownOperator("NullIfExists".into()))),
        b("action without a vendor", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"RunTask","Resource":"*"}}"#,
          "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.", Some(Reason::MissingVendor("RunTask".into()))),
        b("condition key without a vendor", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"StringEquals":{"username":"a"}}}}"#,
          "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.", Some(Reason::MissingVendor("username".into()))),
        b("action with two colons", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:Run:Task","Resource":"*"}}"#,
          "Actions/Condition can contain only one colon.", Some(Reason::TooManyColons("ecs:Run:Task".into()))),
        b("vendor with a space", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"e cs:RunTask","Resource":"*"}}"#,
          "Vendor e cs is not valid", Some(Reason::InvalidVendor("e cs".into()))),
        b("no Action", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}"#,
          "Policy statement must contain actions.", Some(Reason::MissingField("Action"))),
        b("empty Action list", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
          "Policy statement must contain actions.", Some(Reason::MissingField("Action"))),
        b("no Action (resource)", Resource,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*"}}"#,
          "Missing required field Action", Some(Reason::MissingField("Action"))),
        b("no Resource", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*"}}"#,
          "Policy statement must contain resources.", Some(Reason::MissingField("Resource"))),
        b("missing actions is reported before a bad vendor", Identity,
          r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"RunTask","Resource":"*"},{"Effect":"Allow","Resource":"*"}]}"#,
          "Policy statement must contain actions.", Some(Reason::MissingField("Action"))),
        b("resource not an ARN", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"mybucket"}}"#,
          "Resource mybucket must be in ARN format or \"*\".", Some(Reason::NotAnArn("mybucket".into()))),
        b("effect in lower case (identity)", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"ecs:*","Resource":"*"}}"#,
          "The policy failed legacy parsing", Some(Reason::EffectCase("allow".into()))),
        b("effect in lower case (trust)", Trust,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"allow","Principal":"*","Action":"sts:AssumeRole"}}"#,
          "Invalid effect: allow", Some(Reason::EffectCase("allow".into()))),
        b("effect neither Allow nor Deny (identity)", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Permit","Action":"ecs:*","Resource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::InvalidEffect("Permit".into()))),
        b("effect neither Allow nor Deny (resource)", Resource,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Permit","Principal":"*","Action":"ecr:*"}}"#,
          "Invalid effect: Permit", Some(Reason::InvalidEffect("Permit".into()))),
        b("invalid Version (identity)", Identity,
          r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::InvalidVersion("2012-10-18".into()))),
        b("invalid Version (trust)", Trust,
          r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#,
          "Invalid Version", Some(Reason::InvalidVersion("2012-10-18".into()))),
        b("unknown statement field (identity)", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Actions":"ecs:*","Resource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::UnknownField("Actions".into()))),
        b("unknown statement field (resource)", Resource,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*","Actions":"x"}}"#,
          "Unknown field Actions", Some(Reason::UnknownField("Actions".into()))),
        b("unknown top-level field (trust)", Trust,
          r#"{"Version":"2012-10-17","Statements":[]}"#,
          "Unknown field Statements", Some(Reason::UnknownField("Statements".into()))),
        b("no Statement (identity)", Identity, r#"{"Version":"2012-10-17"}"#,
          "Syntax errors in policy.", Some(Reason::MissingField("Statement"))),
        b("no Statement (trust)", Trust, r#"{"Version":"2012-10-17"}"#,
          "Missing required field Statement", Some(Reason::MissingField("Statement"))),
        b("Action and NotAction", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","NotAction":"iam:*","Resource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::Conflict("Action", "NotAction"))),
        b("Resource and NotResource", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","NotResource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::Conflict("Resource", "NotResource"))),
        b("duplicate Sid", Identity,
          r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"ecs:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#,
          "Statement IDs (SID) in a single policy must be unique.", Some(Reason::DuplicateSid("A".into()))),
        b("Sid with a space (identity)", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Sid":"allow all","Effect":"Allow","Action":"ecs:*","Resource":"*"}}"#,
          "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
          Some(Reason::InvalidSid("allow all".into()))),
        b("a date that is none", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"next tuesday"}}}}"#,
          "The policy failed legacy parsing", Some(Reason::InvalidDate("next tuesday".into()))),
        b("invalid AWS principal", Resource,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"ecr:*"}}"#,
          "Invalid principal in policy: \"AWS\":\"bob\"", Some(Reason::InvalidPrincipal("\"AWS\":\"bob\"".into()))),
        b("unknown principal type", Trust,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Group":"admins"},"Action":"sts:AssumeRole"}}"#,
          "Invalid principal in policy: \"Group\":\"admins\"", Some(Reason::InvalidPrincipal("\"Group\":\"admins\"".into()))),
        b("Effect of the wrong type", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":true,"Action":"ecs:*","Resource":"*"}}"#,
          "Syntax errors in policy.", Some(Reason::WrongType("Effect"))),
        b("a null condition value", Identity,
          r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"StringEquals":{"aws:username":null}}}}"#,
          "Syntax errors in policy.", Some(Reason::WrongType("Condition"))),
        b("not an object", Identity, r#"["Statement"]"#, "Syntax errors in policy.", Some(Reason::NotAnObject)),
        b("invalid JSON (trust)", Trust, r#"{"Version": "2012-10-17", "Statement": "#,
          "This policy contains invalid Json", None),
    ]
}

#[test]
fn malformed_table() {
    let mut failures = Vec::new();
    let cases = bad_cases();
    for c in &cases {
        match PolicyDocument::parse(c.text, c.kind) {
            Ok(_) => failures.push(format!("{}: parsed", c.name)),
            Err(e) => {
                if e.message() != c.message {
                    failures.push(format!(
                        "{}: message {:?}, expected {:?}",
                        c.name,
                        e.message(),
                        c.message
                    ));
                }
                if let Some(reason) = &c.reason {
                    if e.reason() != reason {
                        failures.push(format!(
                            "{}: reason {:?}, expected {:?}",
                            c.name,
                            e.reason(),
                            reason
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn json_syntax_error_has_its_position() {
    let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\n    \"Effect\": \"Allow\",,\n  }\n}";
    let e = PolicyDocument::parse(text, PolicyKind::Identity).unwrap_err();
    assert_eq!(e.message(), "Syntax errors in policy.");
    assert_eq!(e.position(), Some((4, 23)), "the second comma");
    assert!(matches!(e.reason(), Reason::Json(_)));
    assert_eq!(
        e.to_string(),
        "Syntax errors in policy. (line 4, column 23)"
    );
}

#[test]
fn a_repeated_key_is_a_syntax_error_with_its_position() {
    let text = "{\"Version\": \"2012-10-17\",\n \"Statement\": {\"Effect\": \"Allow\", \"Effect\": \"Deny\", \"Action\": \"ecs:*\", \"Resource\": \"*\"}}";
    let e = PolicyDocument::parse(text, PolicyKind::Identity).unwrap_err();
    assert_eq!(e.message(), "Syntax errors in policy.");
    assert!(
        matches!(e.reason(), Reason::Json(m) if m.contains("duplicate key `Effect`")),
        "{e:?}"
    );
    assert_eq!(e.position().map(|p| p.0), Some(2));
}

// --- What parsing keeps -------------------------------------------------------

#[test]
fn parsed_documents_are_typed() {
    let doc = PolicyDocument::parse(
        r#"{
            "Id": "ecr-policy",
            "Statement": {
                "Sid": "pull from the build account",
                "Effect": "Allow",
                "Principal": {"AWS": ["111122223333", "arn:aws:iam::444455556666:root",
                                      "arn:aws:iam::111122223333:role/ci", "*"],
                              "Service": "codebuild.amazonaws.com"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Condition": {"NumericLessThan": {"ecr:count": 10},
                              "Bool": {"aws:SecureTransport": true}}
            }
        }"#,
        PolicyKind::Resource,
    )
    .unwrap();
    assert_eq!(doc.version(), Version::V2008_10_17);
    assert_eq!(doc.id(), Some("ecr-policy"));
    assert_eq!(doc.kind(), PolicyKind::Resource);
    let st = &doc.statements()[0];
    assert_eq!(st.sid(), Some("pull from the build account"));
    assert_eq!(st.effect(), Effect::Allow);
    assert!(st.resource().is_none());
    assert_eq!(
        st.action().actions(),
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    );
    assert!(!st.action().is_not());
    let principal = st.principal().unwrap();
    assert!(!principal.is_not());
    let Principals::Map { aws, service, .. } = principal.principals() else {
        panic!("expected a principal map");
    };
    assert_eq!(
        aws,
        &[
            AwsPrincipal::Account("111122223333".into()),
            AwsPrincipal::Account("444455556666".into()),
            AwsPrincipal::Arn("arn:aws:iam::111122223333:role/ci".into()),
            AwsPrincipal::Any,
        ]
    );
    assert_eq!(service, &["codebuild.amazonaws.com"]);
    let conditions = st.conditions();
    assert_eq!(conditions.len(), 2);
    assert_eq!(conditions[0].operator().operator, Operator::NumericLessThan);
    assert_eq!(conditions[0].key(), "ecr:count");
    assert_eq!(conditions[0].values(), ["10"]);
    assert_eq!(conditions[1].values(), ["true"]);
}

#[test]
fn statement_as_array_and_version_2012() {
    let doc = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","NotAction":"iam:*","Resource":"*"},
            {"Effect":"Deny","Action":"iam:*","NotResource":["arn:aws:iam::*:user/${aws:username}"]}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    assert_eq!(doc.version(), Version::V2012_10_17);
    assert_eq!(doc.statements().len(), 2);
    assert!(doc.statements()[0].action().is_not());
    assert!(doc.statements()[1].resource().unwrap().is_not());
    assert_eq!(
        doc.statements()[1].resource().unwrap().resources(),
        ["arn:aws:iam::*:user/${aws:username}"]
    );
}

#[test]
fn resource_policies_allow_free_sids() {
    let doc = PolicyDocument::parse(
        r#"{"Version":"2008-10-17","Statement":[{"Sid":"new statement","Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#,
        PolicyKind::Resource,
    );
    assert!(doc.is_ok(), "{doc:?}");
}

// --- Denial messages -----------------------------------------------------------

#[test]
fn denial_messages() {
    let rows: &[(&str, &str, Decision, Option<&str>)] = &[
        (
            "ecs:RunTask",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
            NO_IDENTITY,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:us-east-1:123456789012:task-definition/web:1 because no identity-based policy allows the ecs:RunTask action"),
        ),
        (
            "codecommit:ListRepositories",
            "*",
            NO_SESSION,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: codecommit:ListRepositories because no session policy allows the codecommit:ListRepositories action"),
        ),
        (
            "codedeploy:ListDeployments",
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*",
            NO_BOUNDARY,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: codedeploy:ListDeployments on resource: arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:* because no permissions boundary allows the codedeploy:ListDeployments action"),
        ),
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
            DENY_RESOURCE,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:* with an explicit deny in a resource-based policy"),
        ),
        (
            "ecs:RunTask",
            "*",
            DENY_IDENTITY,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:RunTask with an explicit deny in an identity-based policy"),
        ),
        (
            "ecs:RunTask",
            "*",
            DENY_BOUNDARY,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:RunTask with an explicit deny in a permissions boundary"),
        ),
        (
            "sts:AssumeRole",
            "arn:aws:iam::123456789012:role/app",
            DENY_TRUST,
            Some("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/app with an explicit deny in the role trust policy"),
        ),
        ("ecs:RunTask", "*", ALLOW, None),
    ];
    for (action, resource, decision, expected) in rows {
        assert_eq!(
            denial_message(ALICE, action, resource, *decision).as_deref(),
            *expected,
            "{decision:?}"
        );
    }
}

#[test]
fn context_key_names_are_case_insensitive() {
    let keys = ContextKeys::new().with("AWS:SourceIp", "10.0.0.1");
    assert_eq!(
        keys.get("aws:sourceip"),
        Some(&["10.0.0.1".to_string()][..])
    );
    assert_eq!(
        keys.get("Aws:SOURCEIP"),
        Some(&["10.0.0.1".to_string()][..])
    );
    assert_eq!(keys.get("aws:SourceVpc"), None);
    let ctx = RequestContext::new(SESSION, "ecs:RunTask", "*");
    assert_eq!(ctx.principal_account, "123456789012");
    assert_eq!(
        ctx.keys.get("aws:principalarn"),
        Some(&[SESSION.to_string()][..])
    );
}

/// Parse once, evaluate many times: a rough guard against accidental
/// quadratic or allocating paths, with a bound loose enough for a busy
/// machine and an unoptimised build.
#[test]
fn evaluation_is_cheap() {
    let mut statements = Vec::new();
    for i in 0..40 {
        statements.push(format!(
            r#"{{"Effect":"Allow","Action":["ecs:Describe*","ecs:List{i}*"],"Resource":"arn:aws:ecs:*:123456789012:cluster/c{i}","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"t{i}"}}}}}}"#
        ));
    }
    statements.push(
        r#"{"Effect":"Deny","Action":"ecs:Delete*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#
            .to_string(),
    );
    statements.push(r#"{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*"}"#.to_string());
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    let doc = PolicyDocument::parse(&text, PolicyKind::Identity).unwrap();
    let policies = Policies {
        identity: vec![&doc],
        ..Policies::default()
    };
    let ctx = RequestContext::new(ALICE, "ecs:RunTask", CLUSTER)
        .with_key("aws:SecureTransport", "true")
        .with_key("aws:PrincipalTag/team", "t7");
    let n = 20_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(evaluate(&policies, &ctx), ALLOW);
    }
    let per = start.elapsed() / n;
    assert!(
        per < std::time::Duration::from_micros(200),
        "{per:?} per evaluation"
    );
}
