//! The two admin passwords every unit shares: the charm's own admin (made by bootstrap, used
//! for the API) and the operator's admin user. The leader keeps them in an application secret
//! (before Juju 3.1, in the peer application bag) and bumps a generation every unit sees.

use anyhow::{Context as _, Result};

use crate::config::Config;
use crate::juju::Juju;
use crate::peer_keys;
use crate::peers::Peers;
use crate::secret::Sensitive;

use super::shared::{self, SharedSecret};

const ADMIN_SECRET_LABEL: &str = "keystone-admin";

/// Content keys, in the secret and in the bag's JSON.
const CHARM_PASSWORD: &str = "charm-admin-password";

const ADMIN_PASSWORD: &str = "admin-password";

/// The Python charm's leader settings for the same two passwords: adopted on upgrade, so the
/// operator's admin password keeps working when this charm replaces it.
const PYTHON_ADMIN_PASSWORD: &str = "admin_passwd";

const PYTHON_CHARM_PASSWORD: &str = "_charm-keystone-admin_passwd";

/// The two passwords every unit shares: the charm's own admin (made by bootstrap, used for the
/// API) and the operator's admin user (unless admin-password is set in config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub charm_password: Sensitive<String>,
    pub admin_password: Sensitive<String>,
    /// The fernet key source they were adopted from (see [`crate::key_sets::sites`]): its
    /// admin password is the one in force, whatever this site's admin-password says.
    pub adopted_from: Option<String>,
}

impl AdminCredentials {
    /// The admin password in force: config's admin-password, else the stored one; on a site
    /// that adopted its fernet key source's credentials, always the source's (one admin user in
    /// one shared database: a site's own value would lock the other sites out).
    pub fn password_in_force(&self, config: &Config) -> Sensitive<String> {
        if self.adopted_from.is_some() {
            return self.admin_password.clone();
        }
        match crate::identity::admin_password_choice(
            config.admin_password.as_ref(),
            Some(&self.admin_password),
        ) {
            crate::identity::AdminPasswordChoice::FromConfig(p)
            | crate::identity::AdminPasswordChoice::Stored(p) => p,
            crate::identity::AdminPasswordChoice::GenerateNew => self.admin_password.clone(),
        }
    }

    pub fn to_content(&self) -> crate::juju::SecretContent {
        crate::juju::SecretContent::from([
            (CHARM_PASSWORD.to_owned(), self.charm_password.clone()),
            (ADMIN_PASSWORD.to_owned(), self.admin_password.clone()),
        ])
    }

    pub fn from_content(content: &crate::juju::SecretContent) -> Result<AdminCredentials> {
        let get = |key: &str| {
            content
                .get(key)
                .filter(|v| !v.expose().is_empty())
                .cloned()
                .with_context(|| format!("the stored admin credentials have no {key}"))
        };
        Ok(AdminCredentials {
            charm_password: get(CHARM_PASSWORD)?,
            admin_password: get(ADMIN_PASSWORD)?,
            adopted_from: None,
        })
    }
}

const ADMIN_CREDENTIALS: SharedSecret = SharedSecret {
    id_key: peer_keys::ADMIN_SECRET_ID,
    bag_key: peer_keys::ADMIN_PASSWORDS,
    label: ADMIN_SECRET_LABEL,
    description: "Keystone admin passwords",
};

/// How many times the admin credentials changed (0 before they were made).
pub fn generation(bag: &crate::juju::Databag) -> u64 {
    bag.get(peer_keys::ADMIN_GENERATION)
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Reads the stored admin credentials (None before the leader made them).
pub fn credentials(juju: &Juju, bag: &crate::juju::Databag) -> Result<Option<AdminCredentials>> {
    let Some(content) = shared::read(juju, bag, &ADMIN_CREDENTIALS)? else {
        return Ok(None);
    };
    let mut credentials = AdminCredentials::from_content(&content)?;
    credentials.adopted_from = bag.get(peer_keys::ADMIN_ADOPTED_FROM).cloned();
    Ok(Some(credentials))
}

/// Stores `credentials` (leader only): in an application secret on Juju ≥ 3.1, else in the bag.
pub fn store(juju: &Juju, peers: &Peers<'_>, credentials: &AdminCredentials) -> Result<()> {
    shared::store(juju, peers, &ADMIN_CREDENTIALS, &credentials.to_content())?;
    let generation = generation(&peers.app()) + 1;
    peers.set_shared(&[
        (peer_keys::ADMIN_GENERATION, Some(generation.to_string())),
        (
            peer_keys::ADMIN_ADOPTED_FROM,
            credentials.adopted_from.clone(),
        ),
    ])
}

/// The stored credentials, made by the leader the first time they are needed: adopted from the
/// Python charm's leader settings when it ran here before, else generated. None on a
/// non-leader before the leader made them.
pub fn ensure(juju: &Juju, peers: &Peers<'_>) -> Result<Option<AdminCredentials>> {
    if let Some(stored) = credentials(juju, &peers.app())? {
        return Ok(Some(stored));
    }
    if !juju
        .is_leader()
        .context("cannot tell whether this unit leads")?
    {
        return Ok(None);
    }
    let settings = juju
        .leader_get()
        .context("cannot read the leader settings")?;
    let adopt = |key: &str| -> Result<Sensitive<String>> {
        match settings.get(key).filter(|v| !v.trim().is_empty()) {
            Some(value) => Ok(Sensitive::new(value.trim().to_owned())),
            None => crate::identity::generate_password()
                .map_err(|e| anyhow::anyhow!("cannot generate a password: {e}")),
        }
    };
    let credentials = AdminCredentials {
        charm_password: adopt(PYTHON_CHARM_PASSWORD)?,
        admin_password: adopt(PYTHON_ADMIN_PASSWORD)?,
        adopted_from: None,
    };
    store(juju, peers, &credentials)?;
    tracing::info!("admin credentials stored for every unit");
    Ok(Some(credentials))
}
