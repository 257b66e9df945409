//! The machine the unit runs on. Only the modules here touch it: files ([`fs`]), the key
//! repositories ([`keys`]), programs
//! ([`process`], including keystone-manage), services and Apache's sites ([`services`]),
//! Debian packages ([`packages`]), network interfaces ([`net`]) and what the Nagios checks read
//! outside hooks ([`monitor`]). Each but the last has a small trait with a test twin, so the
//! charm's decisions are tested in memory; the checks' verdicts are pure ([`crate::nagios`]).

pub mod fs;
pub mod keys;
pub mod monitor;
pub mod net;
pub mod packages;
pub mod process;
pub mod services;
