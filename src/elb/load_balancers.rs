//! Load balancers: `CreateLoadBalancer`, `DescribeLoadBalancers`,
//! `DeleteLoadBalancer`, their attributes, security groups and subnets.
//!
//! Each application load balancer gets an address of its own on this
//! machine (`10.<192..255>.x.y`, beside the instances' `10.<128..191>`),
//! where its listeners bind their ports, so two load balancers can both
//! listen on port 80. Network and gateway load balancers are not served.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::shapes::{
    AvailabilityZone, CreateLoadBalancerInput, CreateLoadBalancerOutput, DeleteLoadBalancerInput,
    DeleteLoadBalancerOutput, DescribeAccountLimitsInput, DescribeAccountLimitsOutput,
    DescribeLoadBalancerAttributesInput, DescribeLoadBalancerAttributesOutput,
    DescribeLoadBalancersInput, DescribeLoadBalancersOutput, IpAddressType, Limit, LoadBalancer,
    LoadBalancerAddress, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerState,
    LoadBalancerStateEnum, LoadBalancerTypeEnum, ModifyLoadBalancerAttributesInput,
    ModifyLoadBalancerAttributesOutput, SetSecurityGroupsInput, SetSecurityGroupsOutput,
    SetSubnetsInput, SetSubnetsOutput,
};
use super::{arn_prefix, check_name, default_vpc, error, new_hex, page, tags, validation, Elb};
use crate::clock::iso_time;
use crate::context::Ctx;
use crate::error::ApiResult;

/// An application load balancer as stored.
#[derive(Debug, Clone)]
pub struct LbRow {
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    /// Its address on this machine.
    pub address: String,
    pub doc: LoadBalancer,
    pub attributes: BTreeMap<String, String>,
}

impl LbRow {
    /// `idle_timeout.timeout_seconds`.
    pub fn idle_timeout(&self) -> u64 {
        self.attributes
            .get("idle_timeout.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60)
    }
}

/// An application load balancer's attributes and their defaults.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("access_logs.s3.enabled", "false"),
    ("access_logs.s3.bucket", ""),
    ("access_logs.s3.prefix", ""),
    ("client_keep_alive.seconds", "3600"),
    ("connection_logs.s3.enabled", "false"),
    ("connection_logs.s3.bucket", ""),
    ("connection_logs.s3.prefix", ""),
    ("deletion_protection.enabled", "false"),
    ("idle_timeout.timeout_seconds", "60"),
    ("routing.http.desync_mitigation_mode", "defensive"),
    ("routing.http.drop_invalid_header_fields.enabled", "false"),
    ("routing.http.preserve_host_header.enabled", "false"),
    (
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
        "false",
    ),
    ("routing.http.xff_client_port.enabled", "false"),
    ("routing.http.xff_header_processing.mode", "append"),
    ("routing.http2.enabled", "true"),
    ("waf.fail_open.enabled", "false"),
    ("zonal_shift.config.enabled", "false"),
];

/// Whether `value` is acceptable for attribute `key`; the message when not.
fn check_attribute(key: &str, value: &str) -> Result<(), String> {
    let boolean = |v: &str| v == "true" || v == "false";
    let ok = match key {
        "idle_timeout.timeout_seconds" => {
            value.parse::<u32>().is_ok_and(|n| (1..=4000).contains(&n))
        }
        "client_keep_alive.seconds" => value
            .parse::<u32>()
            .is_ok_and(|n| (60..=604800).contains(&n)),
        "routing.http.desync_mitigation_mode" => {
            ["monitor", "defensive", "strictest"].contains(&value)
        }
        "routing.http.xff_header_processing.mode" => {
            ["append", "preserve", "remove"].contains(&value)
        }
        k if k.ends_with(".bucket") || k.ends_with(".prefix") => true,
        _ => boolean(value),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "The value of '{key}' must be valid: '{value}' is not an acceptable value"
        ))
    }
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<(LbRowRaw, String, String)> {
    Ok((
        LbRowRaw {
            arn: r.get(0)?,
            account: r.get(1)?,
            region: r.get(2)?,
            name: r.get(3)?,
            address: r.get(4)?,
        },
        r.get(5)?,
        r.get(6)?,
    ))
}

struct LbRowRaw {
    arn: String,
    account: String,
    region: String,
    name: String,
    address: String,
}

const COLUMNS: &str = "arn, account, region, name, address, doc, attributes";

fn decode(raw: (LbRowRaw, String, String)) -> ApiResult<LbRow> {
    let (r, doc, attributes) = raw;
    Ok(LbRow {
        arn: r.arn,
        account: r.account,
        region: r.region,
        name: r.name,
        address: r.address,
        doc: serde_json::from_str(&doc)?,
        attributes: serde_json::from_str(&attributes)?,
    })
}

/// The load balancer `arn`, if it exists.
pub fn load(conn: &Connection, arn: &str) -> ApiResult<Option<LbRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM elb_load_balancers WHERE arn = ?1"
    ))?
    .query_row([arn], row)
    .optional()?
    .map(decode)
    .transpose()
}

/// The load balancer `arn` of the caller's account and region, or
/// `LoadBalancerNotFound`.
pub fn require(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<LbRow> {
    load(conn, arn)?
        .filter(|l| l.account == ctx.account && l.region == ctx.region)
        .ok_or_else(|| {
            error(
                "LoadBalancerNotFound",
                format!("Load balancer '{arn}' not found"),
            )
        })
}

/// Every load balancer (of every account), oldest first.
pub fn all(conn: &Connection) -> ApiResult<Vec<LbRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_load_balancers ORDER BY created_at, arn"
        ))?
        .query_map([], row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode).collect()
}

fn in_scope(conn: &Connection, ctx: &Ctx) -> ApiResult<Vec<LbRow>> {
    let raws: Vec<_> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_load_balancers WHERE account = ?1 AND region = ?2 ORDER BY created_at, arn"
        ))?
        .query_map([&ctx.account, &ctx.region], row)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode).collect()
}

fn save(conn: &Connection, lb: &LbRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE elb_load_balancers SET doc = ?2, attributes = ?3 WHERE arn = ?1")?
        .execute(params![
            lb.arn,
            serde_json::to_string(&lb.doc)?,
            serde_json::to_string(&lb.attributes)?
        ])?;
    Ok(())
}

/// The next free load balancer address: `10.<n>.x.y` with `n` in 192..255
/// from this installation's owner id.
fn next_address(conn: &Connection) -> ApiResult<String> {
    let owner: String = crate::store::owner_in(conn)?.unwrap_or_default();
    let second = 192
        + owner
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
            % 64;
    let used: std::collections::BTreeSet<String> = conn
        .prepare_cached("SELECT address FROM elb_load_balancers")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    (0u32..(254 * 256))
        .map(|i| format!("10.{second}.{}.{}", i / 254, i % 254 + 1))
        .find(|a| !used.contains(a))
        .ok_or_else(|| {
            error(
                "TooManyLoadBalancers",
                "No addresses are left for load balancers.",
            )
        })
}

/// The availability zones of `subnets`: without VPC resources, the n-th
/// subnet named is taken to be in the region's n-th zone.
fn zones(ctx: &Ctx, subnets: &[String], address: &str) -> Vec<AvailabilityZone> {
    subnets
        .iter()
        .enumerate()
        .map(|(i, s)| AvailabilityZone {
            zone_name: Some(format!("{}{}", ctx.region, (b'a' + (i % 6) as u8) as char)),
            subnet_id: Some(s.clone()),
            load_balancer_addresses: (i == 0).then(|| {
                vec![LoadBalancerAddress {
                    ip_address: Some(address.to_string()),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        })
        .collect()
}

fn subnets_of(
    req_subnets: Option<&Vec<String>>,
    mappings: Option<&Vec<super::shapes::SubnetMapping>>,
) -> Vec<String> {
    let mut subnets: Vec<String> = req_subnets.cloned().unwrap_or_default();
    subnets.extend(
        mappings
            .into_iter()
            .flatten()
            .filter_map(|m| m.subnet_id.clone()),
    );
    subnets
}

fn check_subnets(subnets: &[String]) -> ApiResult<()> {
    if subnets.len() < 2 {
        return Err(validation(
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in subnets {
        if !s.starts_with("subnet-") {
            return Err(error(
                "SubnetNotFound",
                format!("The subnet ID '{s}' is not valid"),
            ));
        }
        if !seen.insert(s) {
            return Err(validation(format!("Duplicate subnet ID '{s}'")));
        }
    }
    Ok(())
}

pub fn create(
    e: &Elb,
    ctx: &Ctx,
    req: CreateLoadBalancerInput,
) -> ApiResult<CreateLoadBalancerOutput> {
    check_name("Load balancer", &req.name)?;
    if req.name.starts_with("internal-") {
        return Err(validation(
            "Load balancer name cannot begin with 'internal-'",
        ));
    }
    let kind = req.r#type.unwrap_or(LoadBalancerTypeEnum::Application);
    if kind != LoadBalancerTypeEnum::Application {
        return Err(error(
            "OperationNotPermitted",
            format!(
                "Berth serves application load balancers only; a '{}' load balancer is not supported yet",
                kind.as_str()
            ),
        ));
    }
    let subnets = subnets_of(req.subnets.as_ref(), req.subnet_mappings.as_ref());
    check_subnets(&subnets)?;
    let scheme = req.scheme.unwrap_or(LoadBalancerSchemeEnum::InternetFacing);
    let tags = req.tags.clone().unwrap_or_default();
    tags::check(&tags)?;
    e.store.write(|tx| {
        let existing = tx
            .prepare_cached(
                "SELECT arn FROM elb_load_balancers WHERE account = ?1 AND region = ?2 AND name = ?3",
            )?
            .query_row([&ctx.account, &ctx.region, &req.name], |r| r.get::<_, String>(0))
            .optional()?;
        if let Some(arn) = existing {
            // Creating the same load balancer again answers the existing
            // one, as ELB does when nothing differs.
            let lb = require(tx, ctx, &arn)?;
            let same = lb.doc.scheme == Some(scheme)
                && lb
                    .doc
                    .availability_zones
                    .iter()
                    .flatten()
                    .filter_map(|z| z.subnet_id.clone())
                    .collect::<Vec<_>>()
                    == subnets;
            if same {
                return Ok(CreateLoadBalancerOutput {
                    load_balancers: Some(vec![lb.doc]),
                });
            }
            return Err(error(
                "DuplicateLoadBalancerName",
                "A load balancer with the same name exists, but with different settings",
            ));
        }
        let id = new_hex(16);
        let arn = format!(
            "{}loadbalancer/app/{}/{id}",
            arn_prefix(ctx),
            req.name
        );
        let address = next_address(tx)?;
        let digits: u64 = u64::from_str_radix(&id[..8], 16).unwrap_or(0) % 10_000_000_000;
        let dns = match scheme {
            LoadBalancerSchemeEnum::Internal => format!(
                "internal-{}-{digits}.{}.elb.amazonaws.com",
                req.name, ctx.region
            ),
            LoadBalancerSchemeEnum::InternetFacing => {
                format!("{}-{digits}.{}.elb.amazonaws.com", req.name, ctx.region)
            }
        };
        let doc = LoadBalancer {
            availability_zones: Some(zones(ctx, &subnets, &address)),
            canonical_hosted_zone_id: Some(hosted_zone(&ctx.region).to_string()),
            created_time: Some(iso_time(ctx.now_millis())),
            dns_name: Some(dns),
            ip_address_type: Some(req.ip_address_type.unwrap_or(IpAddressType::Ipv4)),
            load_balancer_arn: Some(arn.clone()),
            load_balancer_name: Some(req.name.clone()),
            scheme: Some(scheme),
            security_groups: Some(req.security_groups.clone().unwrap_or_else(|| {
                vec![default_security_group(&ctx.account, &ctx.region)]
            })),
            state: Some(LoadBalancerState {
                code: Some(LoadBalancerStateEnum::Active),
                reason: None,
            }),
            r#type: Some(LoadBalancerTypeEnum::Application),
            vpc_id: Some(default_vpc(&ctx.account, &ctx.region)),
            ..Default::default()
        };
        let attributes: BTreeMap<String, String> = ATTRIBUTES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tx.prepare_cached(
            "INSERT INTO elb_load_balancers (arn, account, region, name, address, created_at, doc, attributes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            arn,
            ctx.account,
            ctx.region,
            req.name,
            address,
            ctx.now_millis(),
            serde_json::to_string(&doc)?,
            serde_json::to_string(&attributes)?
        ])?;
        tags::set(tx, &arn, &tags)?;
        Ok(CreateLoadBalancerOutput {
            load_balancers: Some(vec![doc]),
        })
    })
}

/// ALB's hosted zone id in a region (the one Route 53 aliases name).
fn hosted_zone(region: &str) -> &'static str {
    match region {
        "us-east-2" => "Z3AADJGX6KTTL2",
        "us-west-1" => "Z368ELLRRE2KJ0",
        "us-west-2" => "Z1H1FL5HABSF5",
        "eu-west-1" => "Z32O12XQLNTSW2",
        "eu-central-1" => "Z215JYRZR1TBD5",
        "ap-northeast-1" => "Z14GRHDCWA56QT",
        "ap-southeast-1" => "Z1LMS91P8CMLE5",
        _ => "Z35SXDOTRQ7X7K",
    }
}

/// The default security group of the account's default VPC.
pub fn default_security_group(account: &str, region: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("default-sg/{account}/{region}").as_bytes());
    format!("sg-{}", &hex::encode(h)[..17])
}

pub fn describe(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeLoadBalancersInput,
) -> ApiResult<DescribeLoadBalancersOutput> {
    let arns = req.load_balancer_arns.unwrap_or_default();
    let names = req.names.unwrap_or_default();
    if !arns.is_empty() && !names.is_empty() {
        return Err(validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    e.store.read(|conn| {
        let all = in_scope(conn, ctx)?;
        let chosen: Vec<LbRow> = if !arns.is_empty() {
            arns.iter()
                .map(|a| {
                    all.iter().find(|l| &l.arn == a).cloned().ok_or_else(|| {
                        error(
                            "LoadBalancerNotFound",
                            "One or more load balancers not found".to_string(),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?
        } else if !names.is_empty() {
            names
                .iter()
                .map(|n| {
                    all.iter().find(|l| &l.name == n).cloned().ok_or_else(|| {
                        error(
                            "LoadBalancerNotFound",
                            format!("Load balancers '[{n}]' not found"),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?
        } else {
            all
        };
        let (items, next) = page(chosen, req.marker.as_deref(), req.page_size)?;
        Ok(DescribeLoadBalancersOutput {
            load_balancers: Some(items.into_iter().map(|l| l.doc).collect()),
            next_marker: next,
        })
    })
}

pub fn delete(
    e: &Elb,
    ctx: &Ctx,
    req: DeleteLoadBalancerInput,
) -> ApiResult<DeleteLoadBalancerOutput> {
    e.store.write(|tx| {
        let Some(lb) = load(tx, &req.load_balancer_arn)?
            .filter(|l| l.account == ctx.account && l.region == ctx.region)
        else {
            // ELB answers a delete of a load balancer that is already gone
            // with success.
            return Ok(DeleteLoadBalancerOutput {});
        };
        if lb
            .attributes
            .get("deletion_protection.enabled")
            .map(String::as_str)
            == Some("true")
        {
            return Err(error(
                "OperationNotPermitted",
                format!(
                    "Load balancer '{}' cannot be deleted because deletion protection is enabled",
                    lb.arn
                ),
            ));
        }
        super::listeners::delete_all_of(tx, &lb.arn)?;
        tx.prepare_cached("DELETE FROM elb_load_balancers WHERE arn = ?1")?
            .execute([&lb.arn])?;
        tags::set(tx, &lb.arn, &[])?;
        Ok(DeleteLoadBalancerOutput {})
    })
}

fn attribute_list(attrs: &BTreeMap<String, String>) -> Vec<LoadBalancerAttribute> {
    attrs
        .iter()
        .map(|(k, v)| LoadBalancerAttribute {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub fn describe_attributes(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeLoadBalancerAttributesInput,
) -> ApiResult<DescribeLoadBalancerAttributesOutput> {
    e.store.read(|conn| {
        let lb = require(conn, ctx, &req.load_balancer_arn)?;
        Ok(DescribeLoadBalancerAttributesOutput {
            attributes: Some(attribute_list(&lb.attributes)),
        })
    })
}

pub fn modify_attributes(
    e: &Elb,
    ctx: &Ctx,
    req: ModifyLoadBalancerAttributesInput,
) -> ApiResult<ModifyLoadBalancerAttributesOutput> {
    e.store.write(|tx| {
        let mut lb = require(tx, ctx, &req.load_balancer_arn)?;
        for a in &req.attributes {
            let key = a.key.clone().unwrap_or_default();
            let value = a.value.clone().unwrap_or_default();
            if !lb.attributes.contains_key(&key) {
                return Err(error(
                    "InvalidConfigurationRequest",
                    format!("Key {key} not valid"),
                ));
            }
            check_attribute(&key, &value).map_err(validation)?;
            lb.attributes.insert(key, value);
        }
        save(tx, &lb)?;
        Ok(ModifyLoadBalancerAttributesOutput {
            attributes: Some(attribute_list(&lb.attributes)),
        })
    })
}

pub fn set_security_groups(
    e: &Elb,
    ctx: &Ctx,
    req: SetSecurityGroupsInput,
) -> ApiResult<SetSecurityGroupsOutput> {
    for g in &req.security_groups {
        if !g.starts_with("sg-") {
            return Err(error(
                "InvalidSecurityGroup",
                format!("Security group '{g}' does not exist"),
            ));
        }
    }
    e.store.write(|tx| {
        let mut lb = require(tx, ctx, &req.load_balancer_arn)?;
        lb.doc.security_groups = Some(req.security_groups.clone());
        save(tx, &lb)?;
        Ok(SetSecurityGroupsOutput {
            security_group_ids: Some(req.security_groups.clone()),
            ..Default::default()
        })
    })
}

pub fn set_subnets(e: &Elb, ctx: &Ctx, req: SetSubnetsInput) -> ApiResult<SetSubnetsOutput> {
    let subnets = subnets_of(req.subnets.as_ref(), req.subnet_mappings.as_ref());
    check_subnets(&subnets)?;
    e.store.write(|tx| {
        let mut lb = require(tx, ctx, &req.load_balancer_arn)?;
        let zones = zones(ctx, &subnets, &lb.address);
        lb.doc.availability_zones = Some(zones.clone());
        save(tx, &lb)?;
        Ok(SetSubnetsOutput {
            availability_zones: Some(zones),
            ..Default::default()
        })
    })
}

/// ELB's default quotas, which Berth also enforces where it counts.
pub const LIMITS: &[(&str, i64)] = &[
    ("application-load-balancers", 50),
    ("target-groups", 3000),
    ("targets-per-application-load-balancer", 1000),
    ("listeners-per-application-load-balancer", 50),
    ("rules-per-application-load-balancer", 100),
    ("targets-per-target-group", 1000),
    ("condition-values-per-alb-rule", 5),
    ("target-groups-per-action-on-application-load-balancer", 5),
];

pub fn account_limits(
    _e: &Elb,
    _ctx: &Ctx,
    req: DescribeAccountLimitsInput,
) -> ApiResult<DescribeAccountLimitsOutput> {
    let limits: Vec<Limit> = LIMITS
        .iter()
        .map(|(n, m)| Limit {
            name: Some(n.to_string()),
            max: Some(m.to_string()),
        })
        .collect();
    let (items, next) = page(limits, req.marker.as_deref(), req.page_size)?;
    Ok(DescribeAccountLimitsOutput {
        limits: Some(items),
        next_marker: next,
    })
}
