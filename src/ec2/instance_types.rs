//! `DescribeInstanceTypes` over Berth's instance-type catalog
//! (`crate::catalog`).
//!
//! Filters (values OR'd, filters AND'd, `*` and `?` wildcards):
//! `instance-type`, `processor-info.supported-architecture`,
//! `processor-info.manufacturer`, `vcpu-info.default-vcpus`,
//! `memory-info.size-in-mib`, `current-generation`,
//! `burstable-performance-supported`, `bare-metal`,
//! `network-info.network-performance`. Pages of `MaxResults` (5–100, default
//! 100) in catalog order.

use serde_json::{json, Value};

use super::{any_matches, filters, invalid_value, page, page_size, page_start, Filter};
use crate::catalog::{self, InstanceType};
use crate::error::{ApiError, ApiResult};

/// The filter names `DescribeInstanceTypes` understands here.
pub const FILTERS: [&str; 9] = [
    "instance-type",
    "processor-info.supported-architecture",
    "processor-info.manufacturer",
    "vcpu-info.default-vcpus",
    "memory-info.size-in-mib",
    "current-generation",
    "burstable-performance-supported",
    "bare-metal",
    "network-info.network-performance",
];

const DEFAULT_PAGE: usize = 100;

/// `DescribeInstanceTypes`.
pub fn describe(input: &Value) -> ApiResult<Value> {
    let requested: Vec<&str> = input
        .get("InstanceTypes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let unknown: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|n| catalog::find(n).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::new(
            "InvalidInstanceType",
            format!(
                "The following supplied instance types do not exist: [{}]",
                unknown.join(", ")
            ),
        ));
    }
    let filters = filters(input);
    for f in &filters {
        if !FILTERS.contains(&f.name.as_str()) {
            return Err(invalid_value(format!("The filter '{}' is invalid", f.name)));
        }
    }
    let matching: Vec<&InstanceType> = catalog::instance_types()
        .iter()
        .filter(|t| requested.is_empty() || requested.contains(&t.name.as_str()))
        .filter(|t| filters.iter().all(|f| matches(t, f)))
        .collect();
    let start = page_start(input)?;
    let (items, token) = page(matching, start, page_size(input, DEFAULT_PAGE));
    let mut out = json!({"InstanceTypes": items.into_iter().map(info).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// The manufacturer as EC2 names it, from the catalog's processor name.
pub fn manufacturer(t: &InstanceType) -> &'static str {
    if t.processor.starts_with("AWS") {
        "Amazon Web Services"
    } else if t.processor.starts_with("AMD") {
        "AMD"
    } else {
        "Intel"
    }
}

/// Whether `t` passes one filter (its name already known to be supported).
pub fn matches(t: &InstanceType, f: &Filter) -> bool {
    let value = match f.name.as_str() {
        "instance-type" => t.name.clone(),
        "processor-info.supported-architecture" => t.arch.as_str().to_string(),
        "processor-info.manufacturer" => manufacturer(t).to_string(),
        "vcpu-info.default-vcpus" => t.vcpus.to_string(),
        "memory-info.size-in-mib" => t.memory_mib.to_string(),
        "current-generation" => t.current_generation.to_string(),
        "burstable-performance-supported" => t.burstable.to_string(),
        "bare-metal" => (t.size() == "metal" || t.size().starts_with("metal-")).to_string(),
        "network-info.network-performance" => t.network_performance.clone(),
        _ => return false,
    };
    any_matches(f, &value)
}

/// One `InstanceTypeInfo`: what the catalog knows, nothing invented.
pub fn info(t: &InstanceType) -> Value {
    json!({
        "InstanceType": t.name,
        "CurrentGeneration": t.current_generation,
        "BurstablePerformanceSupported": t.burstable,
        "BareMetal": t.size() == "metal" || t.size().starts_with("metal-"),
        "SupportedUsageClasses": ["on-demand", "spot"],
        "ProcessorInfo": {
            "SupportedArchitectures": [t.arch.as_str()],
            "Manufacturer": manufacturer(t),
        },
        "VCpuInfo": {"DefaultVCpus": t.vcpus},
        "MemoryInfo": {"SizeInMiB": t.memory_mib},
        "NetworkInfo": {"NetworkPerformance": t.network_performance},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &Value) -> Vec<String> {
        v["InstanceTypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["InstanceType"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn filters_combine() {
        let out = describe(&json!({"Filters": [
            {"Name": "instance-type", "Values": ["m7g.*", "c7g.*"]},
            {"Name": "vcpu-info.default-vcpus", "Values": ["2"]},
        ]}))
        .unwrap();
        let n = names(&out);
        assert!(!n.is_empty());
        for name in &n {
            let t = catalog::find(name).unwrap();
            assert_eq!(t.vcpus, 2);
            assert!(
                name.starts_with("m7g.") || name.starts_with("c7g."),
                "{name}"
            );
        }
        let arm = describe(&json!({"Filters": [
            {"Name": "processor-info.supported-architecture", "Values": ["arm64"]},
            {"Name": "current-generation", "Values": ["true"]},
        ]}))
        .unwrap();
        for name in names(&arm) {
            assert_eq!(catalog::find(&name).unwrap().arch.as_str(), "arm64");
        }
    }

    #[test]
    fn named_types_and_unknown_ones() {
        let out = describe(&json!({"InstanceTypes": ["t3.micro"]})).unwrap();
        assert_eq!(names(&out), vec!["t3.micro"]);
        assert_eq!(
            out["InstanceTypes"][0]["VCpuInfo"]["DefaultVCpus"],
            json!(2)
        );
        let e = describe(&json!({"InstanceTypes": ["t3.micro", "x9.huge"]})).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceType");
        assert_eq!(
            e.message,
            "The following supplied instance types do not exist: [x9.huge]"
        );
        let e = describe(&json!({"Filters": [{"Name": "colour", "Values": ["red"]}]})).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn pages_cover_the_catalog_once() {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({"MaxResults": 10});
            if let Some(t) = &token {
                input["NextToken"] = json!(t);
            }
            let out = describe(&input).unwrap();
            seen.extend(names(&out));
            match out.get("NextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), catalog::instance_types().len());
    }
}
