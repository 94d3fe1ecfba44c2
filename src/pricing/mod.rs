//! The price catalog: AWS Fargate rates and EC2 Linux on-demand hourly prices
//! (with a spot estimate) for the regions Berth meters, and the billing rules
//! AWS applies to them.
//!
//! The figures live in `data/prices/fargate.json` and
//! `data/prices/ec2-linux-ondemand.json`; each file names its sources, the date
//! they were retrieved, and which figures are quoted and which derived (and by
//! what rule). Both files are compiled into the binary with `include_str!` and
//! parsed once, on first use. This module is pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::catalog::Arch;

/// The Fargate price file, embedded at compile time.
const FARGATE_JSON: &str = include_str!("../../data/prices/fargate.json");

/// The EC2 price file, embedded at compile time.
const EC2_JSON: &str = include_str!("../../data/prices/ec2-linux-ondemand.json");

/// Seconds in an hour.
const SECONDS_PER_HOUR: f64 = 3600.0;

/// Fargate bills at least one minute per task.
pub const FARGATE_MINIMUM_SECONDS: u64 = 60;

/// EC2 Linux instances bill at least 60 seconds each time they start.
pub const EC2_MINIMUM_SECONDS: u64 = 60;

/// Where a price file's figures come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub name: String,
    pub urls: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A compute rate: USD per vCPU-hour and per GB-hour of memory.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeRate {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

/// Fargate Linux rates of one region, in USD.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FargateRates {
    /// On-demand, Linux/X86_64.
    pub x86_64: ComputeRate,
    /// On-demand, Linux/ARM64 (Graviton).
    pub arm64: ComputeRate,
    /// Fargate Spot, Linux/X86_64 (an estimate where the basis says so).
    pub spot_x86_64: ComputeRate,
    /// Whether Fargate Spot accepts ARM64 tasks (it does not, as of retrieval).
    pub spot_arm64_offered: bool,
    /// Per GB-hour of configured ephemeral storage above the included 20 GB.
    pub ephemeral_gb_hour: f64,
    /// Per figure: quoted (from where) or derived (by which rule).
    pub basis: BTreeMap<String, String>,
}

impl FargateRates {
    /// The compute rate for an architecture, on-demand or spot. Spot on ARM64
    /// is not offered; asking for it yields `None`.
    pub fn rate(&self, arch: Arch, spot: bool) -> Option<ComputeRate> {
        match (arch, spot) {
            (Arch::X86_64, false) => Some(self.x86_64),
            (Arch::Arm64, false) => Some(self.arm64),
            (Arch::X86_64, true) => Some(self.spot_x86_64),
            (Arch::Arm64, true) => self.spot_arm64_offered.then_some(self.spot_x86_64),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FargateFile {
    source: Source,
    retrieved: String,
    #[allow(dead_code)]
    currency: String,
    included_ephemeral_gb: f64,
    regions: BTreeMap<String, FargateRates>,
}

/// The EC2 prices of one region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Region {
    /// `quoted` or `derived`.
    pub status: String,
    /// The factor applied to us-east-1 prices when derived (1.0 when quoted).
    pub multiplier_vs_us_east_1: f64,
    /// Why the figures are what they are.
    pub basis: String,
    /// Linux on-demand USD per instance-hour, by instance type.
    pub prices: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpotDiscount {
    #[allow(dead_code)]
    basis: String,
    by_family: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ec2File {
    source: Source,
    retrieved: String,
    #[allow(dead_code)]
    currency: String,
    #[allow(dead_code)]
    unit: String,
    regions: BTreeMap<String, Ec2Region>,
    spot_discount: SpotDiscount,
}

fn fargate_file() -> &'static FargateFile {
    static FILE: OnceLock<FargateFile> = OnceLock::new();
    FILE.get_or_init(|| {
        serde_json::from_str(FARGATE_JSON)
            .unwrap_or_else(|e| panic!("data/prices/fargate.json does not parse: {e}"))
    })
}

fn ec2_file() -> &'static Ec2File {
    static FILE: OnceLock<Ec2File> = OnceLock::new();
    FILE.get_or_init(|| {
        serde_json::from_str(EC2_JSON)
            .unwrap_or_else(|e| panic!("data/prices/ec2-linux-ondemand.json does not parse: {e}"))
    })
}

/// The regions priced for both Fargate and EC2, sorted.
pub fn regions() -> Vec<&'static str> {
    let ec2 = &ec2_file().regions;
    fargate_file()
        .regions
        .keys()
        .filter(|r| ec2.contains_key(*r))
        .map(String::as_str)
        .collect()
}

/// The Fargate rates of a region.
pub fn fargate(region: &str) -> Option<&'static FargateRates> {
    fargate_file().regions.get(region)
}

/// The EC2 prices of a region, with their status and basis.
pub fn ec2_region(region: &str) -> Option<&'static Ec2Region> {
    ec2_file().regions.get(region)
}

/// Where the Fargate figures come from, and when they were retrieved.
pub fn fargate_source() -> (&'static Source, &'static str) {
    let f = fargate_file();
    (&f.source, &f.retrieved)
}

/// Where the EC2 figures come from, and when they were retrieved.
pub fn ec2_source() -> (&'static Source, &'static str) {
    let f = ec2_file();
    (&f.source, &f.retrieved)
}

/// The Linux on-demand price of an instance type in a region, USD per hour.
pub fn ec2_on_demand(region: &str, instance_type: &str) -> Option<f64> {
    ec2_region(region)?.prices.get(instance_type).copied()
}

/// The estimated spot discount (fraction off on-demand) of an instance type,
/// by its family.
pub fn ec2_spot_discount(instance_type: &str) -> Option<f64> {
    let family = instance_type
        .split_once('.')
        .map_or(instance_type, |(f, _)| f);
    ec2_file().spot_discount.by_family.get(family).copied()
}

/// The estimated spot price of an instance type in a region, USD per hour:
/// on-demand × (1 − the family's spot discount). An estimate, not a quote.
pub fn ec2_spot_estimate(region: &str, instance_type: &str) -> Option<f64> {
    let on_demand = ec2_on_demand(region, instance_type)?;
    let discount = ec2_spot_discount(instance_type)?;
    Some(on_demand * (1.0 - discount))
}

/// The seconds AWS bills for a run of `seconds`: rounded up to the whole
/// second, and at least `minimum`. Negative or NaN durations count as zero
/// (and so bill the minimum).
fn billed_seconds(seconds: f64, minimum: u64) -> f64 {
    let whole = if seconds.is_nan() || seconds <= 0.0 {
        0.0
    } else {
        seconds.ceil()
    };
    whole.max(minimum as f64)
}

/// What a Fargate task costs in USD, billed as AWS bills it: per second,
/// rounded up to the second, with a one-minute minimum; vCPU and memory at the
/// architecture's (spot or on-demand) rate; ephemeral storage only for the GB
/// configured above the included 20 GB.
///
/// Returns 0.0 for an unknown region, and for spot on ARM64 (not offered).
pub fn fargate_cost(
    region: &str,
    arch: Arch,
    spot: bool,
    vcpu: f64,
    memory_gb: f64,
    ephemeral_gb: f64,
    seconds: f64,
) -> f64 {
    let Some(rates) = fargate(region) else {
        return 0.0;
    };
    let Some(rate) = rates.rate(arch, spot) else {
        return 0.0;
    };
    let hours = billed_seconds(seconds, FARGATE_MINIMUM_SECONDS) / SECONDS_PER_HOUR;
    let extra_storage = (ephemeral_gb - fargate_file().included_ephemeral_gb).max(0.0);
    let per_hour = vcpu.max(0.0) * rate.vcpu_hour
        + memory_gb.max(0.0) * rate.gb_hour
        + extra_storage * rates.ephemeral_gb_hour;
    per_hour * hours
}

/// What an EC2 Linux instance costs in USD for a run of `seconds`: per second,
/// rounded up to the second, with a 60-second minimum, at the on-demand price
/// or the spot estimate. `None` for an unknown region or instance type.
pub fn ec2_cost(region: &str, instance_type: &str, spot: bool, seconds: f64) -> Option<f64> {
    let per_hour = if spot {
        ec2_spot_estimate(region, instance_type)?
    } else {
        ec2_on_demand(region, instance_type)?
    };
    Some(per_hour * billed_seconds(seconds, EC2_MINIMUM_SECONDS) / SECONDS_PER_HOUR)
}

#[cfg(test)]
mod tests;
