use super::*;
use crate::catalog;

const REQUIRED_REGIONS: [&str; 5] = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn files_parse_and_name_their_sources() {
    let (fs, fdate) = fargate_source();
    let (es, edate) = ec2_source();
    assert!(fs
        .urls
        .iter()
        .any(|u| u.contains("aws.amazon.com/fargate/pricing")));
    assert!(es
        .urls
        .iter()
        .any(|u| u.contains("aws.amazon.com/ec2/pricing")));
    assert_eq!(fdate, "2026-11-23");
    assert_eq!(edate, "2026-11-23");
    assert!(!fs.notes.is_empty() && !es.notes.is_empty());
}

#[test]
fn required_regions_are_priced() {
    let regions = regions();
    for r in REQUIRED_REGIONS {
        assert!(regions.contains(&r), "{r} missing from {regions:?}");
        assert!(fargate(r).is_some(), "no Fargate rates for {r}");
        assert!(ec2_region(r).is_some(), "no EC2 prices for {r}");
    }
    assert!(fargate("mars-north-1").is_none());
}

#[test]
fn every_catalog_type_is_priced_in_every_region() {
    let types = catalog::instance_types();
    assert!(types.len() >= 60);
    for r in regions() {
        let region = ec2_region(r).unwrap();
        assert_eq!(
            region.prices.len(),
            types.len(),
            "{r} prices a type not in the catalog"
        );
        for t in types {
            let od = ec2_on_demand(r, &t.name)
                .unwrap_or_else(|| panic!("{} has no on-demand price in {r}", t.name));
            assert!(od > 0.0 && od < 10.0, "{} in {r}: {od}", t.name);
            let spot = ec2_spot_estimate(r, &t.name)
                .unwrap_or_else(|| panic!("{} has no spot estimate in {r}", t.name));
            assert!(
                spot > 0.0 && spot < od,
                "{} in {r}: spot {spot} vs {od}",
                t.name
            );
        }
    }
    assert_eq!(ec2_on_demand("us-east-1", "z9.huge"), None);
    assert_eq!(ec2_on_demand("mars-north-1", "m5.large"), None);
}

#[test]
fn derived_regions_follow_their_stated_rule() {
    let base = ec2_region("us-east-1").unwrap();
    assert_eq!(base.status, "quoted");
    assert!(close(base.multiplier_vs_us_east_1, 1.0));
    for r in regions() {
        let region = ec2_region(r).unwrap();
        assert!(
            region.status == "quoted" || region.status == "derived",
            "{r}: {}",
            region.status
        );
        assert!(!region.basis.is_empty());
        for (name, price) in &region.prices {
            let expected = base.prices[name] * region.multiplier_vs_us_east_1;
            // The file rounds to 6 decimals; allow for that and float noise.
            assert!(
                (*price - expected).abs() <= 1.5e-6,
                "{name} in {r}: {price} vs {expected}"
            );
        }
    }
}

#[test]
fn quoted_us_east_1_prices() {
    assert_eq!(ec2_on_demand("us-east-1", "m5.large"), Some(0.096));
    assert_eq!(ec2_on_demand("us-east-1", "t3.micro"), Some(0.0104));
    assert_eq!(ec2_on_demand("us-east-1", "m7g.large"), Some(0.0816));
    assert_eq!(ec2_on_demand("us-east-1", "c8g.8xlarge"), Some(1.27616));
    // Sizes within a family scale linearly with the vCPUs.
    for t in catalog::instance_types() {
        let large = format!("{}.large", t.family());
        let (Some(p), Some(pl), Some(l)) = (
            ec2_on_demand("us-east-1", &t.name),
            ec2_on_demand("us-east-1", &large),
            catalog::find(&large),
        ) else {
            continue;
        };
        let expected = pl * f64::from(t.vcpus) / f64::from(l.vcpus);
        // t-family sizes scale with memory, not vCPUs, and medium prices are
        // rounded to 4 digits by AWS; compare loosely and only non-burstable.
        if !t.burstable {
            assert!(
                (p - expected).abs() / expected < 0.01,
                "{}: {p} vs {expected}",
                t.name
            );
        }
    }
}

#[test]
fn fargate_arm64_is_cheaper_than_x86() {
    for r in regions() {
        let f = fargate(r).unwrap();
        assert!(f.arm64.vcpu_hour < f.x86_64.vcpu_hour, "{r}");
        assert!(f.arm64.gb_hour < f.x86_64.gb_hour, "{r}");
        assert!(
            fargate_cost(r, Arch::Arm64, false, 1.0, 2.0, 20.0, 3600.0)
                < fargate_cost(r, Arch::X86_64, false, 1.0, 2.0, 20.0, 3600.0)
        );
    }
}

#[test]
fn fargate_spot_is_cheaper_and_x86_only() {
    for r in regions() {
        let f = fargate(r).unwrap();
        assert!(f.spot_x86_64.vcpu_hour < f.x86_64.vcpu_hour, "{r}");
        assert!(f.spot_x86_64.gb_hour < f.x86_64.gb_hour, "{r}");
        assert!(!f.spot_arm64_offered, "{r}");
        assert_eq!(f.rate(Arch::Arm64, true), None);
        assert_eq!(
            fargate_cost(r, Arch::Arm64, true, 1.0, 2.0, 20.0, 3600.0),
            0.0
        );
        assert!(
            fargate_cost(r, Arch::X86_64, true, 1.0, 2.0, 20.0, 3600.0)
                < fargate_cost(r, Arch::X86_64, false, 1.0, 2.0, 20.0, 3600.0)
        );
        for key in ["x86_64", "arm64", "spot_x86_64", "ephemeral_gb_hour"] {
            assert!(f.basis.contains_key(key), "{r} gives no basis for {key}");
        }
    }
}

#[test]
fn ec2_spot_is_cheaper_than_on_demand() {
    for r in regions() {
        for t in catalog::instance_types() {
            let od = ec2_cost(r, &t.name, false, 3600.0).unwrap();
            let spot = ec2_cost(r, &t.name, true, 3600.0).unwrap();
            assert!(spot < od, "{} in {r}", t.name);
        }
    }
    let d = ec2_spot_discount("m5.large").unwrap();
    assert!((0.5..=0.9).contains(&d));
}

#[test]
fn fargate_worked_example() {
    // 1 vCPU / 2 GB for one hour in us-east-1, x86_64, on-demand.
    let cost = fargate_cost("us-east-1", Arch::X86_64, false, 1.0, 2.0, 20.0, 3600.0);
    assert!(close(cost, 0.04048 + 2.0 * 0.004445), "{cost}");
    assert!(close(cost, 0.04937));
    // Same on arm64.
    let cost = fargate_cost("us-east-1", Arch::Arm64, false, 1.0, 2.0, 20.0, 3600.0);
    assert!(close(cost, 0.03238 + 2.0 * 0.00356), "{cost}");
}

#[test]
fn fargate_one_minute_minimum_and_rounding() {
    let per_second = (0.04048 + 2.0 * 0.004445) / 3600.0;
    let cost = |s: f64| fargate_cost("us-east-1", Arch::X86_64, false, 1.0, 2.0, 20.0, s);
    assert!(close(cost(0.0), 60.0 * per_second));
    assert!(close(cost(1.0), 60.0 * per_second));
    assert!(close(cost(59.2), 60.0 * per_second));
    assert!(close(cost(60.0), 60.0 * per_second));
    assert!(close(cost(60.2), 61.0 * per_second));
    assert!(close(cost(61.0), 61.0 * per_second));
    assert!(close(cost(-5.0), 60.0 * per_second));
    assert!(close(cost(f64::NAN), 60.0 * per_second));
    assert_eq!(
        fargate_cost("mars-north-1", Arch::X86_64, false, 1.0, 2.0, 20.0, 60.0),
        0.0
    );
}

#[test]
fn fargate_ephemeral_storage_only_above_20_gb() {
    let base = fargate_cost("us-east-1", Arch::X86_64, false, 1.0, 2.0, 20.0, 3600.0);
    assert!(close(
        fargate_cost("us-east-1", Arch::X86_64, false, 1.0, 2.0, 0.0, 3600.0),
        base
    ));
    assert!(close(
        fargate_cost("us-east-1", Arch::X86_64, false, 1.0, 2.0, 10.0, 3600.0),
        base
    ));
    let with_50 = fargate_cost("us-east-1", Arch::X86_64, false, 1.0, 2.0, 50.0, 3600.0);
    assert!(close(with_50 - base, 30.0 * 0.000111), "{}", with_50 - base);
}

#[test]
fn ec2_billing_per_second_with_60_second_minimum() {
    let hourly = ec2_on_demand("us-east-1", "m5.large").unwrap();
    let cost = |s: f64| ec2_cost("us-east-1", "m5.large", false, s).unwrap();
    assert!(close(cost(3600.0), hourly));
    assert!(close(cost(1.0), hourly * 60.0 / 3600.0));
    assert!(close(cost(60.0), hourly * 60.0 / 3600.0));
    assert!(close(cost(90.4), hourly * 91.0 / 3600.0));
    let spot = ec2_spot_estimate("us-east-1", "m5.large").unwrap();
    assert!(close(
        ec2_cost("us-east-1", "m5.large", true, 30.0).unwrap(),
        spot * 60.0 / 3600.0
    ));
    assert_eq!(ec2_cost("us-east-1", "z9.huge", false, 60.0), None);
    assert_eq!(ec2_cost("mars-north-1", "m5.large", true, 60.0), None);
}
