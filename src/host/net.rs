//! The machine's network: its interfaces and their addresses, as the kernel lists them (what the
//! ha relation needs to tell which interface a virtual IP belongs on), and whether a server it
//! depends on accepts connections (the database, in the health-check hooks).

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

/// How long a server has to accept a connection before it counts as not answering.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The machine's network.
pub trait Interfaces {
    /// Every interface (with or without an address), in the kernel's order.
    fn list(&self) -> Result<Vec<Interface>, NetError>;

    /// Whether `host:port` accepts a TCP connection within [`CONNECT_TIMEOUT`]; why not
    /// otherwise (`connection refused`, `timed out`, a name that does not resolve).
    fn accepts(&self, host: &str, port: u16) -> Result<(), String>;
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

    fn accepts(&self, host: &str, port: u16) -> Result<(), String> {
        use std::net::ToSocketAddrs as _;
        let addresses = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?;
        let mut last = format!("{host} has no address");
        for address in addresses {
            match std::net::TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string().to_lowercase(),
            }
        }
        Err(last)
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
/// ::1/128) and `eth0` (10.0.0.10/24), from which every server accepts connections until a test
/// says one refuses them.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug)]
pub struct MemoryInterfaces(
    std::sync::Mutex<Vec<Interface>>,
    std::sync::Mutex<std::collections::BTreeSet<(String, u16)>>,
);

#[cfg(any(test, feature = "testkit"))]
impl Default for MemoryInterfaces {
    fn default() -> MemoryInterfaces {
        MemoryInterfaces::new(vec![
            Interface::parse("lo", &["127.0.0.1/8", "::1/128"]),
            Interface::parse("eth0", &["10.0.0.10/24"]),
        ])
    }
}

#[cfg(any(test, feature = "testkit"))]
impl MemoryInterfaces {
    pub fn new(interfaces: Vec<Interface>) -> MemoryInterfaces {
        MemoryInterfaces(std::sync::Mutex::new(interfaces), Default::default())
    }

    /// `host:port` refuses connections (`refuses: true`) or accepts them again.
    pub fn set_refusing(&self, host: &str, port: u16, refuses: bool) {
        let mut refusing = self.1.lock().unwrap_or_else(|p| p.into_inner());
        if refuses {
            refusing.insert((host.to_owned(), port));
        } else {
            refusing.remove(&(host.to_owned(), port));
        }
    }

    /// Replaces the machine's interfaces.
    pub fn set(&self, interfaces: Vec<Interface>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = interfaces;
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Interfaces for MemoryInterfaces {
    fn list(&self) -> Result<Vec<Interface>, NetError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn accepts(&self, host: &str, port: u16) -> Result<(), String> {
        let refusing = self.1.lock().unwrap_or_else(|p| p.into_inner());
        if refusing.contains(&(host.to_owned(), port)) {
            return Err("connection refused".to_owned());
        }
        Ok(())
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
    fn this_machine_tells_a_listening_port_from_a_closed_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(HostInterfaces.accepts("127.0.0.1", port), Ok(()));
        drop(listener);
        let refused = HostInterfaces.accepts("127.0.0.1", port).unwrap_err();
        assert!(refused.contains("refused"), "{refused}");
        assert!(
            HostInterfaces
                .accepts("no-such-host.invalid", 3306)
                .is_err()
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
