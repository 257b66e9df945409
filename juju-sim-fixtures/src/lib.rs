//! The Keystone charm's fixtures for juju-sim: what its tests, benches and demo deploy around the
//! charm. The simulator itself (`juju-sim`) knows no charm; everything Keystone-specific is
//! here, built on its public API.
//!
//! - [`scripted`]: the remote charms Keystone relates to, scripted in Rust (mysql, hacluster,
//!   identity consumers, a certificate authority, keystone-ldap, keystone-openidc), and this host's MariaDB as
//!   their database;
//! - [`mariadb`]: a MariaDB server of a test's own, which it can stop and start;
//! - [`slapd`]: an LDAP directory of a test's own, for an LDAP-backed domain;
//! - [`oidc`]: an OpenID Connect provider of a test's own, signing bearer tokens for
//!   federation;
//! - [`demo`]: a Keystone unit's machine ([`demo::keystone_machine`]), the demo bundle and its
//!   deployment, reports, and HTTP helpers to ask Keystone for tokens;
//! - [`multi_site`]: three sites in three models sharing one database and one key set.
//!
//! The `juju-sim-demo` binary (`make demo`) deploys the bundle and prints what it did.

pub mod demo;
pub mod mariadb;
pub mod multi_site;
pub mod oidc;
pub mod scripted;
mod server;
pub mod slapd;
