//! The machine's network interfaces and their addresses, as the kernel lists them: what the ha
//! relation needs to tell which interface a virtual IP belongs on.

use std::net::IpAddr;

/// One network interface of the machine and its IP addresses, in the kernel's order (the
/// interface's primary IPv4 address first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The kernel's name for it (`eth0`, `ens3`, `br-ex`).
    pub name: String,
    pub addresses: Vec<InterfaceAddress>,
}

/// An address on an interface, with the prefix length of its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub address: IpAddr,
    /// The subnet's prefix length (24 for `10.0.0.5/24`).
    pub prefix: u8,
}

impl Interface {
    /// An interface named `name` with `addresses` given as `address/prefix` text; for tests
    /// and twins. Entries that do not parse are left out.
    pub fn parse(name: &str, addresses: &[&str]) -> Interface {
        Interface {
            name: name.to_owned(),
            addresses: addresses
                .iter()
                .filter_map(|text| {
                    let (address, prefix) = text.split_once('/')?;
                    Some(InterfaceAddress {
                        address: address.parse().ok()?,
                        prefix: prefix.parse().ok()?,
                    })
                })
                .collect(),
        }
    }
}

/// Why the interfaces could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list this machine's network interfaces: {0}")]
pub struct NetError(String);

/// The machine's network interfaces.
pub trait Interfaces {
    /// Every interface (with or without an address), in the kernel's order.
    fn list(&self) -> Result<Vec<Interface>, NetError>;
}

/// This machine's interfaces, read with getifaddrs(3) each time they are asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostInterfaces;

impl Interfaces for HostInterfaces {
    fn list(&self) -> Result<Vec<Interface>, NetError> {
        let entries =
            nix::ifaddrs::getifaddrs().map_err(|errno| NetError(format!("getifaddrs: {errno}")))?;
        let mut interfaces: Vec<Interface> = Vec::new();
        for entry in entries {
            // Every interface has a link-layer entry first, so the order is the kernel's
            // interface order even for interfaces without any IP address.
            let at = match interfaces
                .iter()
                .position(|i| i.name == entry.interface_name)
            {
                Some(at) => at,
                None => {
                    interfaces.push(Interface {
                        name: entry.interface_name.clone(),
                        addresses: Vec::new(),
                    });
                    interfaces.len() - 1
                }
            };
            let Some(address) = entry.address.as_ref().and_then(ip_of) else {
                continue;
            };
            let full = if address.is_ipv4() { 32 } else { 128 };
            let prefix = entry
                .netmask
                .as_ref()
                .and_then(ip_of)
                .map(|mask| prefix_length(mask).min(full))
                .unwrap_or(full);
            interfaces[at]
                .addresses
                .push(InterfaceAddress { address, prefix });
        }
        Ok(interfaces)
    }
}

/// The IP address in a socket address, if it is an IPv4 or IPv6 one.
fn ip_of(storage: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    storage.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// The prefix length a netmask stands for (its one bits).
fn prefix_length(mask: IpAddr) -> u8 {
    let ones = match mask {
        IpAddr::V4(mask) => u32::from(mask).count_ones(),
        IpAddr::V6(mask) => u128::from(mask).count_ones(),
    };
    u8::try_from(ones).unwrap_or(u8::MAX)
}

/// A test twin: the interfaces a test sets. It starts as a typical machine: `lo` (127.0.0.1/8,
/// ::1/128) and `eth0` (10.0.0.10/24).
#[derive(Debug)]
pub struct MemoryInterfaces(std::sync::Mutex<Vec<Interface>>);

impl Default for MemoryInterfaces {
    fn default() -> MemoryInterfaces {
        MemoryInterfaces::new(vec![
            Interface::parse("lo", &["127.0.0.1/8", "::1/128"]),
            Interface::parse("eth0", &["10.0.0.10/24"]),
        ])
    }
}

impl MemoryInterfaces {
    pub fn new(interfaces: Vec<Interface>) -> MemoryInterfaces {
        MemoryInterfaces(std::sync::Mutex::new(interfaces))
    }

    /// Replaces the machine's interfaces.
    pub fn set(&self, interfaces: Vec<Interface>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = interfaces;
    }
}

impl Interfaces for MemoryInterfaces {
    fn list(&self) -> Result<Vec<Interface>, NetError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_become_prefix_lengths() {
        assert_eq!(prefix_length("255.255.255.0".parse().unwrap()), 24);
        assert_eq!(prefix_length("255.255.255.255".parse().unwrap()), 32);
        assert_eq!(prefix_length("ffff:ffff:ffff:ffff::".parse().unwrap()), 64);
    }

    #[test]
    fn this_machine_lists_its_loopback() {
        let interfaces = HostInterfaces.list().unwrap();
        let lo = interfaces.iter().find(|i| i.name == "lo").expect("lo");
        assert!(
            lo.addresses.contains(&InterfaceAddress {
                address: "127.0.0.1".parse().unwrap(),
                prefix: 8
            }),
            "{lo:?}"
        );
    }

    #[test]
    fn the_twin_parses_and_is_settable() {
        let twin = MemoryInterfaces::default();
        assert_eq!(twin.list().unwrap()[1].name, "eth0");
        twin.set(vec![Interface::parse(
            "ens3",
            &["fd00::5/64", "bad", "10.1.0.2/x"],
        )]);
        let listed = twin.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].addresses.len(), 1);
        assert_eq!(listed[0].addresses[0].prefix, 64);
    }
}
