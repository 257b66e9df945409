//! Which Keystone runs, for what the charm configures differently by release.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::host::fs::Files;
use crate::paths;

/// Keystone's release, by the major version of its package (21 Yoga, 22 Zed, 23 2023.1,
/// 24 2023.2, 25 Caracal, ...); unknown before the package is installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeystoneRelease {
    pub major: Option<u32>,
}

/// What asked for a release upgrade in this hook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// Upgrades run when their turn comes (none while action-managed-upgrade is true).
    #[default]
    Scheduled,
    /// The openstack-upgrade action: this unit upgrades now if the schema allows it.
    Action,
}

/// Caracal's major version: from it on Keystone checks revocations through its cache
/// (Launchpad 2113772).
const CARACAL: u32 = 25;

/// Keystone's major version in each OpenStack release.
const CODENAMES: [(u32, &str); 8] = [
    (21, "yoga"),
    (22, "zed"),
    (23, "antelope"),
    (24, "bobcat"),
    (25, "caracal"),
    (26, "dalmatian"),
    (27, "epoxy"),
    (28, "flamingo"),
];

/// The installed Keystone's upstream version (`22.0.2`), as the last hook that could change it
/// saw it; None before the package is installed.
pub fn kept_version(files: &dyn Files) -> Result<Option<String>> {
    let kept = files
        .read(Path::new(paths::KEYSTONE_VERSION))
        .context("cannot read the kept Keystone version")?;
    Ok(kept
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(|version| version.trim().to_owned())
        .filter(|version| !version.is_empty()))
}

impl KeystoneRelease {
    /// From the package's upstream version (`22.0.2`).
    pub fn of_version(upstream: &str) -> KeystoneRelease {
        KeystoneRelease {
            major: upstream.split('.').next().and_then(|m| m.parse().ok()),
        }
    }

    /// The release of the Keystone installed, as the last hook that could change it saw it.
    pub fn kept(files: &dyn Files) -> Result<KeystoneRelease> {
        Ok(kept_version(files)?
            .map(|version| KeystoneRelease::of_version(&version))
            .unwrap_or_default())
    }

    /// The OpenStack release's codename, as the OpenStack charms name it (`caracal`); None for
    /// a major version this charm does not know.
    pub fn codename(self) -> Option<&'static str> {
        CODENAMES
            .iter()
            .find(|(major, _)| Some(*major) == self.major)
            .map(|(_, name)| *name)
    }

    /// Whether cached token validations stay coherent across units: up to Caracal a revoked
    /// token is refused through the revocation events in the database whatever the cache
    /// holds; from Caracal on a validation cached anywhere would outlive the revocation there.
    /// Off while the release is unknown.
    pub fn caches_tokens_coherently(self) -> bool {
        matches!(self.major, Some(major) if major < CARACAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_major_version_names_its_openstack_release() {
        let of = |v| KeystoneRelease::of_version(v).codename();
        assert_eq!(of("21.0.1"), Some("yoga"));
        assert_eq!(of("25.0.0"), Some("caracal"));
        assert_eq!(of("28.0.0"), Some("flamingo"));
        assert_eq!(of("20.0.0"), None);
        assert_eq!(KeystoneRelease::default().codename(), None);
    }

    #[test]
    fn token_caching_stays_on_only_before_caracal() {
        let of = |v| KeystoneRelease::of_version(v).caches_tokens_coherently();
        assert!(of("21.0.1"));
        assert!(of("22.0.2"));
        assert!(!of("25.0.0"));
        assert!(!of("27.0.0~b1"));
        assert!(!of("not a version"));
        assert!(!KeystoneRelease::default().caches_tokens_coherently());
    }
}
