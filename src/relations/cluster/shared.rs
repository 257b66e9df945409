//! Secret content the leader shares with every unit (the service users' passwords, the
//! credentials a key source offers its sites, the admin credentials): an application secret on
//! Juju 3.1 and later, its id in the peer application bag; before, JSON in that bag.

use anyhow::{Context as _, Result};

use crate::juju::{Juju, SecretRead, SecretUri};
use crate::peer_keys;
use crate::peers::Peers;
use crate::secret::Sensitive;

use super::{AppSecret, put_app_secret};

/// Secret content the leader shares with every unit: an application secret on Juju ≥ 3.1
/// (its id under `id_key` in the peer application bag), else JSON under `bag_key` in that bag.
pub struct SharedSecret {
    pub(super) id_key: &'static str,
    pub(super) bag_key: &'static str,
    pub(super) label: &'static str,
    pub(super) description: &'static str,
}

/// The service users' passwords (identity-service and identity-credentials).
pub const SERVICE_PASSWORDS: SharedSecret = SharedSecret {
    id_key: peer_keys::SERVICE_PASSWORDS_SECRET_ID,
    bag_key: peer_keys::SERVICE_PASSWORDS,
    label: "keystone-service-passwords",
    description: "Keystone service users' passwords",
};

impl SharedSecret {
    /// The secret's URI, once the leader stored its content in one.
    pub fn uri(&self, bag: &crate::juju::Databag) -> Option<SecretUri> {
        bag.get(self.id_key).and_then(|id| SecretUri::parse(id))
    }
}

/// The credentials a fernet key source offers other sites (see
/// [`crate::relations::fernet_keys`]), when they can travel in a secret.
pub const SITE_CREDENTIALS: SharedSecret = SharedSecret {
    id_key: peer_keys::SITE_CREDENTIALS_SECRET_ID,
    bag_key: peer_keys::SITE_CREDENTIALS,
    label: "keystone-site-credentials",
    description: "Keystone passwords shared with other sites",
};

/// Identifies secret content without revealing it: SHA-256 over its sorted entries. Only for
/// content that holds a generated password (32 random characters), so that the digest cannot
/// be searched for the other values either.
pub fn content_digest(content: &crate::juju::SecretContent) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for (key, value) in content {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.expose().as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Secret content as JSON, where it travels in a bag.
pub fn content_to_json(content: &crate::juju::SecretContent) -> Result<Sensitive<String>> {
    let map: std::collections::BTreeMap<&String, &String> =
        content.iter().map(|(k, v)| (k, v.expose())).collect();
    Ok(Sensitive::new(
        serde_json::to_string(&map).context("cannot encode secret content as JSON")?,
    ))
}

/// Secret content from its JSON (see [`content_to_json`]).
pub fn content_from_json(text: &str) -> Result<crate::juju::SecretContent> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).context("not a JSON object of strings")?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, Sensitive::new(v)))
        .collect())
}

/// Reads a shared secret's content (None before the leader stored it).
pub fn read(
    juju: &Juju,
    bag: &crate::juju::Databag,
    what: &SharedSecret,
) -> Result<Option<crate::juju::SecretContent>> {
    if let Some(uri) = what.uri(bag) {
        let content = juju
            .secret_get(&uri, SecretRead::Refresh)
            .with_context(|| format!("cannot read the {} secret", what.label))?;
        return Ok(Some(content));
    }
    match bag.get(what.bag_key) {
        Some(text) => content_from_json(text).map(Some).with_context(|| {
            format!(
                "the {} in the cluster relation are not valid JSON",
                what.description
            )
        }),
        None => Ok(None),
    }
}

/// Stores a shared secret's whole content (leader only); the secret's URI when it is in one.
pub fn store(
    juju: &Juju,
    peers: &Peers<'_>,
    what: &SharedSecret,
    content: &crate::juju::SecretContent,
) -> Result<Option<SecretUri>> {
    let bag = &peers.app();
    if juju.supports_secrets() {
        let secret = AppSecret {
            id_key: what.id_key,
            label: what.label,
            description: what.description,
        };
        match put_app_secret(juju, bag, &secret, content)? {
            Some(uri) => {
                peers.set_shared(&[(what.id_key, Some(uri.to_string()))])?;
                Ok(Some(uri))
            }
            None => Ok(what.uri(bag)),
        }
    } else {
        let text = content_to_json(content)
            .with_context(|| format!("cannot encode the {}", what.description))?;
        peers.set_shared(&[(what.bag_key, Some(text.into_inner()))])?;
        Ok(None)
    }
}
