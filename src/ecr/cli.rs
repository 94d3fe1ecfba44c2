//! `berth images`: every repository of the registry, its images and their
//! size, its URI, and what its lifecycle policy expires next. Plain ECR
//! calls (`DescribeRepositories`, `DescribeImages`, `GetLifecyclePolicy`)
//! made as the aws CLI makes them; the policy is evaluated here with the
//! registry's own rules.

use serde_json::{json, Value};

use super::lifecycle::{self, ExpiryTrigger, ImageFacts};
use crate::client::{block_on, render_table, Client, ClientError};

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921";

#[derive(clap::Args, Debug)]
pub struct ImagesCommand {
    /// The server (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Region (default: $AWS_REGION or $AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long)]
    region: Option<String>,
}

async fn call(c: &Client, op: &str, body: Value) -> Result<Value, ClientError> {
    c.call_service("ecr", &format!("{TARGET}.{op}"), &body)
        .await
}

/// Every page of a listing.
async fn all(c: &Client, op: &str, body: Value, key: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut body = body;
    loop {
        let page = call(c, op, body.clone()).await?;
        out.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(t) => body["nextToken"] = json!(t),
            None => return Ok(out),
        }
    }
}

/// Bytes for people.
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// What the policy expires next: at its next evaluation, or later.
pub fn next_expiry(policy: &str, images: &[ImageFacts], now_ms: i64) -> String {
    let Ok(p) = lifecycle::parse(policy) else {
        return "(policy unreadable)".into();
    };
    let now = lifecycle::evaluate(&p, images, now_ms);
    if !now.is_empty() {
        return format!("{} at the next evaluation", now.len());
    }
    let upcoming = lifecycle::upcoming(&p, images, now_ms, 1);
    let soonest = upcoming.iter().min_by_key(|u| match u.trigger {
        ExpiryTrigger::AtTime { at_ms } => (0, at_ms),
        ExpiryTrigger::AfterPushes { pushes } => (1, pushes as i64),
    });
    match soonest {
        None => "nothing".into(),
        Some(u) => match u.trigger {
            ExpiryTrigger::AtTime { at_ms } => {
                let days = (at_ms - now_ms) as f64 / 86_400_000.0;
                format!("{} in {days:.1} days", short(&u.digest))
            }
            ExpiryTrigger::AfterPushes { pushes } => {
                format!("{} after {pushes} more push(es)", short(&u.digest))
            }
        },
    }
}

/// The report.
pub async fn report(c: &Client) -> anyhow::Result<String> {
    let repos = all(c, "DescribeRepositories", json!({}), "repositories").await?;
    if repos.is_empty() {
        return Ok("No repositories.\n".into());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    for r in &repos {
        let name = r["repositoryName"].as_str().unwrap_or_default().to_string();
        let images = all(
            c,
            "DescribeImages",
            json!({"repositoryName": name}),
            "imageDetails",
        )
        .await?;
        let size: i64 = images
            .iter()
            .filter_map(|i| i["imageSizeInBytes"].as_i64())
            .sum();
        let facts: Vec<ImageFacts> = images
            .iter()
            .map(|i| ImageFacts {
                digest: i["imageDigest"].as_str().unwrap_or_default().to_string(),
                tags: i["imageTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect(),
                pushed_at_ms: (i["imagePushedAt"].as_f64().unwrap_or_default() * 1000.0) as i64,
            })
            .collect();
        let expiry = match call(c, "GetLifecyclePolicy", json!({"repositoryName": name})).await {
            Ok(p) => next_expiry(
                p["lifecyclePolicyText"].as_str().unwrap_or_default(),
                &facts,
                now_ms,
            ),
            Err(ClientError::Api { code, .. }) if code == "LifecyclePolicyNotFoundException" => {
                "(no policy)".into()
            }
            Err(e) => return Err(e.into()),
        };
        rows.push(vec![
            name,
            images.len().to_string(),
            human_bytes(size),
            r["imageTagMutability"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            r["repositoryUri"].as_str().unwrap_or_default().to_string(),
            expiry,
        ]);
    }
    Ok(render_table(
        &[
            "REPOSITORY",
            "IMAGES",
            "SIZE",
            "TAGS",
            "URI",
            "EXPIRES NEXT",
        ],
        &rows,
        usize::MAX,
    ))
}

/// Run `berth images`; the process's exit code.
pub fn run(cmd: ImagesCommand) -> anyhow::Result<i32> {
    let c = Client::from_env(cmd.endpoint_url.as_deref(), cmd.region.as_deref())?;
    let out = block_on(report(&c))??;
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_expiry_is_said_plainly() {
        let policy = r#"{"rules":[{"rulePriority":1,"description":"two days untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":2},"action":{"type":"expire"}}]}"#;
        let day = 86_400_000;
        let img = |d: &str, at: i64| ImageFacts {
            digest: format!("sha256:{}", d.repeat(64)),
            tags: vec![],
            pushed_at_ms: at,
        };
        assert_eq!(
            next_expiry(policy, &[img("a", 0)], day / 2),
            "aaaaaaaaaaaa in 1.5 days"
        );
        assert_eq!(
            next_expiry(policy, &[img("a", 0), img("b", 0)], 3 * day),
            "2 at the next evaluation"
        );
        assert_eq!(next_expiry(policy, &[], 0), "nothing");
        assert_eq!(human_bytes(1_788_427), "1.8 MB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
