//! Which Keystone runs, for what the charm configures differently by release.

/// Keystone's release, by the major version of its package (21 Yoga, 22 Zed, 23 2023.1,
/// 24 2023.2, 25 Caracal, ...); unknown before the package is installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeystoneRelease {
    pub major: Option<u32>,
}

/// Caracal's major version: from it on Keystone checks revocations through its cache
/// (Launchpad 2113772).
const CARACAL: u32 = 25;

impl KeystoneRelease {
    /// From the package's upstream version (`22.0.2`).
    pub fn of_version(upstream: &str) -> KeystoneRelease {
        KeystoneRelease {
            major: upstream.split('.').next().and_then(|m| m.parse().ok()),
        }
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
