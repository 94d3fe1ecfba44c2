//! The EC2 instance-type catalog: which instance types exist, their size, and
//! what the ECS container agent would register for each.
//!
//! The figures live in `data/instance-types.json` (its `source` field names the
//! AWS documentation pages they were taken from, `retrieved` when). The file is
//! compiled into the binary with `include_str!` and parsed once, on first use.
//! This module is pure: no I/O, no clock, no Docker.

use std::sync::OnceLock;

use serde::Deserialize;

/// The catalog file, embedded at compile time.
const CATALOG_JSON: &str = include_str!("../../data/instance-types.json");

/// One MiB in bytes.
const MIB: u64 = 1024 * 1024;

/// `free -b` total on the m4.large of the ECS "Container instance memory
/// management" page: 8 GiB installed, 8,373,026,816 bytes seen by the OS.
const DOC_EXAMPLE_OS_TOTAL_BYTES: u64 = 8_373_026_816;

/// The installed memory of that m4.large, in MiB.
const DOC_EXAMPLE_INSTALLED_MIB: u64 = 8192;

/// CPU units the agent registers per vCPU.
pub const CPU_UNITS_PER_VCPU: i64 = 1024;

/// `ECS_RESERVED_MEMORY`'s default on Linux: nothing reserved.
pub const DEFAULT_RESERVED_MEMORY_MIB: i64 = 0;

/// `ECS_RESERVED_PORTS`'s default on Linux: SSH, the Docker daemon (plain and
/// TLS), the agent introspection API and the task credentials endpoint.
pub const DEFAULT_RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// A CPU architecture, spelled as `DescribeInstanceTypes` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    /// The architecture as `DescribeInstanceTypes` and the ECS attribute
    /// `ecs.cpu-architecture` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// One EC2 instance type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceType {
    /// The API name, e.g. `t3.medium`.
    pub name: String,
    /// Default vCPUs (`VCpuInfo.DefaultVCpus`).
    pub vcpus: u32,
    /// Installed memory in MiB (`MemoryInfo.SizeInMiB`).
    pub memory_mib: u64,
    pub arch: Arch,
    /// As `NetworkInfo.NetworkPerformance` reports it, e.g. `Up to 12.5 Gigabit`.
    pub network_performance: String,
    /// A T-family instance with CPU credits.
    pub burstable: bool,
    pub current_generation: bool,
    /// The processor, e.g. `Intel Xeon Ice Lake` or `AWS Graviton3 Processor`.
    pub processor: String,
}

impl InstanceType {
    /// The family part of the name: `m7g` for `m7g.large`.
    pub fn family(&self) -> &str {
        self.name.split_once('.').map_or(&self.name, |(f, _)| f)
    }

    /// The size part of the name: `large` for `m7g.large`.
    pub fn size(&self) -> &str {
        self.name.split_once('.').map_or("", |(_, s)| s)
    }
}

/// Where the catalog's figures come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub name: String,
    pub urls: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    source: Source,
    retrieved: String,
    instance_types: Vec<InstanceType>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        serde_json::from_str(CATALOG_JSON)
            .unwrap_or_else(|e| panic!("data/instance-types.json does not parse: {e}"))
    })
}

/// Every instance type in the catalog, in file order.
pub fn instance_types() -> &'static [InstanceType] {
    &catalog().instance_types
}

/// The instance type with this exact API name.
pub fn find(name: &str) -> Option<&'static InstanceType> {
    instance_types().iter().find(|t| t.name == name)
}

/// Where the figures come from.
pub fn source() -> &'static Source {
    &catalog().source
}

/// The date (YYYY-MM-DD) the figures were retrieved.
pub fn retrieved() -> &'static str {
    &catalog().retrieved
}

/// What the ECS container agent registers for an instance of this type with
/// the default configuration: `(CPU units, memory MiB)`.
///
/// The agent (amazon-ecs-agent, `agent/api/ecsclient/client.go`,
/// `getCpuAndMemory` and `getResources`) registers
///
/// * CPU = `runtime.NumCPU() × 1024`, i.e. vCPUs × 1024;
/// * MEMORY = `MemTotal / 1024 / 1024` from `/proc/meminfo` (integer division,
///   so rounded down to whole MiB) minus `ECS_RESERVED_MEMORY` (default 0).
///
/// `MemTotal`, the memory the OS sees, is less than the installed memory
/// (kernel and platform overhead) and depends on the AMI and kernel, so it can
/// only be approximated here. The approximation scales the installed memory by
/// the one ratio AWS documents: the ECS Developer Guide page "Container instance
/// memory management" (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/memory-management.html>)
/// shows an m4.large, 8 GiB installed, whose OS reports 8,373,026,816 bytes,
/// "which translates to 7985 MiB available for tasks". So
///
/// ```text
/// memory = floor(memory_mib × 8,373,026,816 / (8192 × 1,048,576)) − ECS_RESERVED_MEMORY
/// ```
///
/// which is about 97.47 % of the installed memory, and exactly 7985 MiB for
/// 8 GiB. Real hosts vary by some tens of MiB either way.
pub fn ecs_registered_resources(t: &InstanceType) -> (i64, i64) {
    ecs_registered_resources_with_reserved(t, DEFAULT_RESERVED_MEMORY_MIB)
}

/// [`ecs_registered_resources`] with `ECS_RESERVED_MEMORY` set to
/// `reserved_memory_mib`. The agent refuses to register when the reservation
/// exceeds the memory; here the memory is floored at 0 instead.
pub fn ecs_registered_resources_with_reserved(
    t: &InstanceType,
    reserved_memory_mib: i64,
) -> (i64, i64) {
    let cpu = i64::from(t.vcpus) * CPU_UNITS_PER_VCPU;
    let os_total_mib = u128::from(t.memory_mib) * u128::from(DOC_EXAMPLE_OS_TOTAL_BYTES)
        / (u128::from(DOC_EXAMPLE_INSTALLED_MIB) * u128::from(MIB));
    let os_total_mib = i64::try_from(os_total_mib).unwrap_or(i64::MAX);
    let memory = os_total_mib.saturating_sub(reserved_memory_mib).max(0);
    (cpu, memory)
}

/// The TCP ports the ECS agent reserves on every Linux container instance by
/// default (`ECS_RESERVED_PORTS`; they appear in `remainingResources` `PORTS`
/// of `DescribeContainerInstances`): 22, 2375, 2376, 51678, 51679.
pub fn default_ports_reserved() -> Vec<u16> {
    DEFAULT_RESERVED_PORTS.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    const REQUIRED_FAMILIES: [&str; 18] = [
        "t3", "t3a", "t4g", "m5", "m6i", "m6g", "m7i", "m7g", "c5", "c6i", "c6g", "c7i", "c7g",
        "c8g", "r6i", "r6g", "r7g", "r7i",
    ];

    /// The letters after the generation digit: `a` in `t3a`, `g` in `m7g`.
    fn processor_suffix(family: &str) -> &str {
        let digit = family
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or_else(|| panic!("family {family} has no generation digit"));
        &family[digit + 1..]
    }

    fn synthetic(name: &str, vcpus: u32, memory_mib: u64) -> InstanceType {
        InstanceType {
            name: name.to_string(),
            vcpus,
            memory_mib,
            arch: Arch::X86_64,
            network_performance: "Moderate".to_string(),
            burstable: false,
            current_generation: false,
            processor: "Intel Xeon".to_string(),
        }
    }

    #[test]
    fn catalog_parses_with_provenance() {
        assert!(instance_types().len() >= 70, "{}", instance_types().len());
        assert_eq!(retrieved(), "2026-11-23");
        let src = source();
        assert!(!src.name.is_empty());
        assert!(!src.urls.is_empty());
        assert!(src
            .urls
            .iter()
            .all(|u| u.starts_with("https://docs.aws.amazon.com/")));
    }

    #[test]
    fn parsed_once() {
        let a = instance_types().as_ptr();
        let b = instance_types().as_ptr();
        assert_eq!(a, b);
        assert!(std::ptr::eq(
            find("m5.large").unwrap(),
            find("m5.large").unwrap()
        ));
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for t in instance_types() {
            assert!(seen.insert(t.name.as_str()), "duplicate {}", t.name);
            assert!(!t.family().is_empty() && !t.size().is_empty(), "{}", t.name);
            assert!(
                t.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn every_required_family_has_several_sizes() {
        let mut per_family: BTreeMap<&str, usize> = BTreeMap::new();
        for t in instance_types() {
            *per_family.entry(t.family()).or_default() += 1;
        }
        for family in REQUIRED_FAMILIES {
            let n = per_family.get(family).copied().unwrap_or(0);
            assert!(n >= 4, "{family} has {n} sizes");
        }
        for family in per_family.keys() {
            assert!(REQUIRED_FAMILIES.contains(family), "unexpected {family}");
        }
    }

    #[test]
    fn every_entry_is_sane() {
        for t in instance_types() {
            let family = t.family();
            let suffix = processor_suffix(family);
            // Graviton families carry a `g` after the generation digit.
            let graviton = suffix.contains('g');
            assert_eq!(
                t.arch,
                if graviton { Arch::Arm64 } else { Arch::X86_64 },
                "{}",
                t.name
            );
            let vendor_ok = if graviton {
                t.processor.starts_with("AWS Graviton")
            } else if suffix.contains('a') {
                t.processor.starts_with("AMD")
            } else {
                t.processor.starts_with("Intel")
            };
            assert!(vendor_ok, "{}: {}", t.name, t.processor);
            let graviton_gen = match family.as_bytes()[1] {
                b'6' => "2",
                b'7' => "3",
                b'8' => "4",
                _ if family == "t4g" => "2",
                _ => "",
            };
            if graviton {
                assert!(
                    t.processor.contains(&format!("Graviton{graviton_gen}")),
                    "{}: {}",
                    t.name,
                    t.processor
                );
            }

            assert_eq!(t.burstable, family.starts_with('t'), "{}", t.name);
            assert!(t.current_generation, "{}", t.name);

            assert!(t.vcpus >= 1 && t.vcpus.is_power_of_two(), "{}", t.name);
            assert!(t.memory_mib >= 512 && t.memory_mib % 512 == 0, "{}", t.name);
            let per_vcpu = t.memory_mib / u64::from(t.vcpus);
            match family.as_bytes()[0] {
                b'c' => assert_eq!(per_vcpu, 2048, "{}", t.name),
                b'm' => assert_eq!(per_vcpu, 4096, "{}", t.name),
                b'r' => assert_eq!(per_vcpu, 8192, "{}", t.name),
                b't' => assert!(t.vcpus <= 8, "{}", t.name),
                _ => panic!("unexpected class {}", t.name),
            }
            // `medium` is a 1-vCPU size everywhere but the T families.
            if t.size() == "medium" && !t.burstable {
                assert_eq!(t.vcpus, 1, "{}", t.name);
            }
            // Intel and AMD sizes (other than T) start at large.
            if !graviton && !t.burstable {
                assert_ne!(t.size(), "medium", "{}", t.name);
            }

            let gbps = t
                .network_performance
                .strip_prefix("Up to ")
                .unwrap_or(&t.network_performance)
                .strip_suffix(" Gigabit")
                .unwrap_or_else(|| panic!("{}: {}", t.name, t.network_performance));
            let gbps: f64 = gbps
                .parse()
                .unwrap_or_else(|_| panic!("{}: {}", t.name, t.network_performance));
            assert!(gbps > 0.0 && gbps <= 25.0, "{}", t.name);
            if t.burstable {
                assert_eq!(t.network_performance, "Up to 5 Gigabit", "{}", t.name);
            }
            // The credit-based "Up to" bandwidth stops at 4xlarge.
            if t.network_performance.starts_with("Up to ") {
                assert!(t.vcpus <= 16, "{}", t.name);
            } else {
                assert!(t.vcpus >= 32, "{}", t.name);
            }
        }
    }

    #[test]
    fn sizes_double_within_a_family() {
        let mut per_family: BTreeMap<&str, Vec<&InstanceType>> = BTreeMap::new();
        for t in instance_types() {
            per_family.entry(t.family()).or_default().push(t);
        }
        for (family, mut types) in per_family {
            types.sort_by_key(|t| t.memory_mib);
            for pair in types.windows(2) {
                assert_eq!(
                    pair[1].memory_mib,
                    pair[0].memory_mib * 2,
                    "{family}: {} -> {}",
                    pair[0].name,
                    pair[1].name
                );
                assert!(pair[1].vcpus >= pair[0].vcpus, "{family}");
            }
        }
    }

    #[test]
    fn t3_medium() {
        let t = find("t3.medium").expect("t3.medium");
        assert_eq!(t.vcpus, 2);
        assert_eq!(t.memory_mib, 4096);
        assert_eq!(t.arch, Arch::X86_64);
        assert_eq!(t.arch.as_str(), "x86_64");
        assert!(t.burstable);
        assert_eq!(t.network_performance, "Up to 5 Gigabit");
        let (cpu, memory) = ecs_registered_resources(t);
        assert_eq!(cpu, 2048);
        assert_eq!(memory, 3992);
    }

    #[test]
    fn known_figures() {
        let m7g = find("m7g.large").unwrap();
        assert_eq!((m7g.vcpus, m7g.memory_mib), (2, 8192));
        assert_eq!(m7g.arch, Arch::Arm64);
        assert_eq!(m7g.network_performance, "Up to 12.5 Gigabit");
        assert_eq!(
            find("c7g.4xlarge").unwrap().network_performance,
            "Up to 15 Gigabit"
        );
        assert_eq!(
            find("m5.8xlarge").unwrap().network_performance,
            "10 Gigabit"
        );
        assert_eq!(
            find("m6g.8xlarge").unwrap().network_performance,
            "12 Gigabit"
        );
        assert_eq!(find("c8g.medium").unwrap().memory_mib, 2048);
        assert_eq!(find("r7i.large").unwrap().memory_mib, 16384);
        assert_eq!(find("t4g.micro").unwrap().vcpus, 2);
    }

    #[test]
    fn find_misses_types_that_do_not_exist() {
        assert!(find("t4g.8xlarge").is_none());
        assert!(find("m7i.medium").is_none());
        assert!(find("m4.large").is_none()); // previous generation, not listed
        assert!(find("T3.MEDIUM").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn registered_memory_matches_the_documented_m4_large() {
        // 8,373,026,816 bytes seen by the OS -> 7985 MiB registered.
        let m4 = synthetic("m4.large", 2, 8192);
        assert_eq!(ecs_registered_resources(&m4), (2048, 7985));
        assert_eq!(
            ecs_registered_resources_with_reserved(&m4, 256),
            (2048, 7985 - 256)
        );
        assert_eq!(ecs_registered_resources_with_reserved(&m4, 100_000).1, 0);
    }

    #[test]
    fn registered_resources_are_sane_for_every_entry() {
        for t in instance_types() {
            let (cpu, memory) = ecs_registered_resources(t);
            assert_eq!(cpu, i64::from(t.vcpus) * 1024, "{}", t.name);
            let installed = i64::try_from(t.memory_mib).unwrap();
            assert!(memory < installed, "{}", t.name);
            assert!(memory * 100 > installed * 97, "{}", t.name);
        }
        let huge = synthetic("u-24tb1.metal", 448, 24 * 1024 * 1024);
        assert!(ecs_registered_resources(&huge).1 > 0);
    }

    #[test]
    fn default_reserved_ports() {
        assert_eq!(default_ports_reserved(), vec![22, 2375, 2376, 51678, 51679]);
    }
}
