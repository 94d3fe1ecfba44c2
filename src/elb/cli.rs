//! `berth lb`: every load balancer with the URL to point a browser at, and
//! the health of its targets. Plain ELB calls (`DescribeLoadBalancers`,
//! `DescribeListeners`, `DescribeTargetGroups`, `DescribeTargetHealth`) made
//! as the aws CLI makes them.

use serde_json::Value;

use crate::client::{block_on, render_table, Client};

const VERSION: &str = "2015-12-01";
const SERVICE: &str = "elasticloadbalancing";

#[derive(clap::Args, Debug)]
pub struct LbCommand {
    /// The server (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Region (default: $AWS_REGION or $AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long)]
    region: Option<String>,
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

async fn call(c: &Client, action: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    Ok(c.call_query(SERVICE, VERSION, action, params).await?)
}

/// Every load balancer, its listeners' URLs, and its targets' health.
pub async fn report(c: &Client) -> anyhow::Result<String> {
    let lbs = list(
        &call(c, "DescribeLoadBalancers", &[]).await?,
        "LoadBalancers",
    );
    if lbs.is_empty() {
        return Ok("No load balancers.\n".into());
    }
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for lb in &lbs {
        let arn = text(lb, "LoadBalancerArn");
        let name = text(lb, "LoadBalancerName");
        let address = lb["AvailabilityZones"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|z| {
                z["LoadBalancerAddresses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|a| text(&a, "IpAddress"))
            .find(|a| !a.is_empty())
            .unwrap_or_default();
        let listeners = list(
            &call(c, "DescribeListeners", &[("LoadBalancerArn", &arn)]).await?,
            "Listeners",
        );
        let urls: Vec<String> = listeners
            .iter()
            .map(|l| {
                format!(
                    "{}://{address}:{}",
                    text(l, "Protocol").to_lowercase(),
                    text(l, "Port")
                )
            })
            .collect();
        let groups = list(
            &call(c, "DescribeTargetGroups", &[("LoadBalancerArn", &arn)]).await?,
            "TargetGroups",
        );
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for g in &groups {
            let tg_arn = text(g, "TargetGroupArn");
            let health = list(
                &call(c, "DescribeTargetHealth", &[("TargetGroupArn", &tg_arn)]).await?,
                "TargetHealthDescriptions",
            );
            for h in &health {
                let state = text(&h["TargetHealth"], "State");
                *counts.entry(state.clone()).or_default() += 1;
                targets.push(vec![
                    name.clone(),
                    text(g, "TargetGroupName"),
                    format!(
                        "{}:{}",
                        text(&h["Target"], "Id"),
                        text(&h["Target"], "Port")
                    ),
                    state,
                    text(&h["TargetHealth"], "Reason"),
                ]);
            }
        }
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        rows.push(vec![
            name,
            text(&lb["State"], "Code"),
            if urls.is_empty() {
                "(no listeners)".into()
            } else {
                urls.join(" ")
            },
            text(lb, "DNSName"),
            if summary.is_empty() {
                "none".into()
            } else {
                summary.join(", ")
            },
        ]);
    }
    let mut out = render_table(
        &["LOAD BALANCER", "STATE", "URL", "DNS NAME", "TARGETS"],
        &rows,
        usize::MAX,
    );
    if !targets.is_empty() {
        out.push('\n');
        out.push_str(&render_table(
            &[
                "LOAD BALANCER",
                "TARGET GROUP",
                "TARGET",
                "HEALTH",
                "REASON",
            ],
            &targets,
            usize::MAX,
        ));
    }
    Ok(out)
}

/// Run `berth lb`; the process's exit code.
pub fn run(cmd: LbCommand) -> anyhow::Result<i32> {
    let c = Client::from_env(cmd.endpoint_url.as_deref(), cmd.region.as_deref())?;
    let out = block_on(report(&c))??;
    print!("{out}");
    Ok(0)
}
