//! Container instance addresses: IPv4 addresses local to this machine, one
//! per container instance, that Docker publishes the instance's ports on.
//! Two instances never see each other's ports, and the machine and its
//! containers reach `address:port` (through Docker's DNAT rules and its
//! userland proxy).
//!
//! An address is added to the interface `HOST_INTERFACE` with the `ip`
//! command (iproute2), which needs root or CAP_NET_ADMIN. The interface is a
//! dummy one; where the kernel has no dummy driver (`CONFIG_DUMMY` unset, as
//! in some VM kernels) it is a bridge without ports, whose addresses are just
//! as local.

use std::net::Ipv4Addr;
use std::process::Output;

use tokio::process::Command;
use tokio::sync::Mutex;

use super::{RuntimeError, HOST_INTERFACE};

/// One change at a time, so concurrent tasks on one instance do not race
/// to create the interface or add the same address.
#[derive(Default)]
pub struct HostAddresses {
    lock: Mutex<()>,
}

fn parse(ip: &str) -> Result<Ipv4Addr, RuntimeError> {
    ip.parse::<Ipv4Addr>()
        .ok()
        .filter(|a| !a.is_unspecified() && !a.is_broadcast() && !a.is_multicast())
        .ok_or_else(|| {
            RuntimeError::Other(format!(
                "{ip:?} is not a usable IPv4 address for a container instance"
            ))
        })
}

/// Run `ip ARGS`; `Err` only when it cannot be run at all.
async fn ip(args: &[&str]) -> Result<Output, RuntimeError> {
    Command::new("ip")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            RuntimeError::Other(format!(
                "cannot run `ip` (iproute2), which container instance addresses need: {e}"
            ))
        })
}

/// `ip ARGS`, which must succeed.
async fn ip_ok(args: &[&str]) -> Result<(), RuntimeError> {
    let out = ip(args).await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(args, &out))
    }
}

fn failed(args: &[&str], out: &Output) -> RuntimeError {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let hint = if err.contains("Operation not permitted") {
        " (changing network interfaces needs root or CAP_NET_ADMIN)"
    } else {
        ""
    };
    RuntimeError::Other(format!("`ip {}` failed: {err}{hint}", args.join(" ")))
}

/// Whether the kernel routes `addr` to this machine (`ip route get` says
/// `local`), on whatever interface.
async fn is_local(addr: Ipv4Addr) -> Result<bool, RuntimeError> {
    let out = ip(&["-4", "-o", "route", "get", &addr.to_string()]).await?;
    Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("local "))
}

/// The IPv4 addresses in `ip -o -4 addr show` output.
fn addresses_in(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            let cidr = words.next()?;
            Some(cidr.split('/').next().unwrap_or(cidr).to_string())
        })
        .collect()
}

/// The addresses on `HOST_INTERFACE`; `None` when it does not exist.
async fn interface_addresses() -> Result<Option<Vec<String>>, RuntimeError> {
    let out = ip(&["-o", "-4", "addr", "show", "dev", HOST_INTERFACE]).await?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(addresses_in(&String::from_utf8_lossy(&out.stdout))))
}

/// Create `HOST_INTERFACE` unless it exists, and bring it up.
async fn ensure_interface() -> Result<(), RuntimeError> {
    if interface_addresses().await?.is_none() {
        let dummy = ["link", "add", HOST_INTERFACE, "type", "dummy"];
        let out = ip(&dummy).await?;
        if !out.status.success() && interface_addresses().await?.is_none() {
            // No dummy driver in this kernel ("Unknown device type"): an
            // empty bridge holds local addresses as well.
            if !String::from_utf8_lossy(&out.stderr).contains("Unknown device type") {
                return Err(failed(&dummy, &out));
            }
            ip_ok(&["link", "add", HOST_INTERFACE, "type", "bridge"]).await?;
        }
    }
    let link = ip(&["-o", "link", "show", "dev", HOST_INTERFACE]).await?;
    if is_up(&String::from_utf8_lossy(&link.stdout)) {
        return Ok(());
    }
    ip_ok(&["link", "set", "dev", HOST_INTERFACE, "up"]).await
}

/// Whether `ip -o link show` output has the `UP` flag.
fn is_up(output: &str) -> bool {
    output
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP"))
}

/// Add `addr` to `HOST_INTERFACE` unless it is local.
async fn ensure(addr: Ipv4Addr) -> Result<(), RuntimeError> {
    if is_local(addr).await? {
        return Ok(());
    }
    ensure_interface().await?;
    let cidr = format!("{addr}/32");
    let add = ["addr", "add", cidr.as_str(), "dev", HOST_INTERFACE];
    let out = ip(&add).await?;
    // Already there (the interface was down, or another Berth added it).
    if out.status.success() || is_local(addr).await? {
        return Ok(());
    }
    Err(failed(&add, &out))
}

impl HostAddresses {
    pub async fn ensure(&self, ip_text: &str) -> Result<(), RuntimeError> {
        let addr = parse(ip_text)?;
        let _guard = self.lock.lock().await;
        ensure(addr).await.map_err(|e| {
            RuntimeError::Other(format!(
                "cannot add the container instance address {addr} to {HOST_INTERFACE}: {e}"
            ))
        })
    }

    pub async fn remove(&self, ip_text: &str) -> Result<(), RuntimeError> {
        let addr = parse(ip_text)?;
        let _guard = self.lock.lock().await;
        let on_interface = |list: Option<Vec<String>>| {
            list.unwrap_or_default()
                .iter()
                .any(|a| *a == addr.to_string())
        };
        if !on_interface(interface_addresses().await?) {
            return Ok(());
        }
        let cidr = format!("{addr}/32");
        let del = ["addr", "del", cidr.as_str(), "dev", HOST_INTERFACE];
        let out = ip(&del).await?;
        if out.status.success() || !on_interface(interface_addresses().await?) {
            return Ok(());
        }
        Err(RuntimeError::Other(format!(
            "cannot remove the container instance address {addr} from {HOST_INTERFACE}: {}",
            failed(&del, &out)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_ip_output() {
        let out = "7: berth0    inet 10.99.0.1/32 scope global berth0\\       valid_lft forever preferred_lft forever\n\
                   7: berth0    inet 10.99.0.2/32 scope global berth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(addresses_in(out), vec!["10.99.0.1", "10.99.0.2"]);
        assert!(addresses_in("").is_empty());
    }

    #[test]
    fn up_flag() {
        assert!(is_up(
            "7: berth0: <BROADCAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue"
        ));
        assert!(!is_up(
            "7: berth0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN"
        ));
        assert!(!is_up(""));
    }

    #[test]
    fn only_usable_ipv4_addresses() {
        assert!(parse("10.99.0.1").is_ok());
        for bad in [
            "",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "10.0.0.1/32",
            "x; rm -rf /",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
