//! The service users' passwords (identity-service and identity-credentials), which the leader
//! keeps for every unit in an application secret ([`cluster::shared::SERVICE_PASSWORDS`]): made once,
//! adopted from the Python charm when it ran here before, and shared with the other sites of a
//! fernet key source (see [`crate::key_sets::sites`]).

use anyhow::{Context as _, Result};

use crate::juju::Databag;
use crate::peer_keys;
use crate::relations::cluster;
use crate::secret::Sensitive;
use crate::step::Hook;

/// How many times the service users' passwords changed (0 before any was stored).
pub fn passwords_generation(peer_bag: &Databag) -> u64 {
    peer_bag
        .get(peer_keys::SERVICE_PASSWORDS_GENERATION)
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Content keys: a user's password is under `user-<hex of its name>`.
const USER_PREFIX: &str = "user-";
/// The key sites that share one database derive new users' passwords from.
const SITE_KEY: &str = "site-password-key";

fn user_of_hex(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The password every site gives `user` when none has one yet: derived from the sites' key.
fn derived_password(key: &Sensitive<String>, user: &str) -> Result<Sensitive<String>> {
    crate::identity::derived_password(key, user)
        .map_err(|e| anyhow::anyhow!("cannot derive the password of {user}: {e}"))
}

/// The service users' passwords, by user name.
pub struct Passwords {
    content: crate::juju::SecretContent,
    changed: bool,
}

impl Passwords {
    /// What the leader stored (nothing before it stored any).
    pub fn read(hook: &Hook<'_>, peer_bag: &Databag) -> Result<Passwords> {
        Ok(Passwords {
            content: cluster::shared::read(
                hook.juju,
                peer_bag,
                &cluster::shared::SERVICE_PASSWORDS,
            )?
            .unwrap_or_default(),
            changed: false,
        })
    }

    fn key(user: &str) -> String {
        let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{USER_PREFIX}{hex}")
    }

    pub fn get(&self, user: &str) -> Option<&Sensitive<String>> {
        self.content.get(&Passwords::key(user))
    }

    /// The user's password: the stored one; else, where sites share one database, the one
    /// every site derives from their shared key (see [`Passwords::ensure_site_key`]); else the
    /// Python charm's (see [`python_password`]), so consumers keep working when this charm
    /// replaces it; else a new one.
    pub fn ensure(&mut self, hook: &Hook<'_>, user: &str) -> Result<Sensitive<String>> {
        if let Some(password) = self.get(user) {
            return Ok(password.clone());
        }
        let password = match self.content.get(SITE_KEY) {
            Some(key) => derived_password(key, user)?,
            None => {
                let settings = hook
                    .juju
                    .leader_get()
                    .context("cannot read the leader settings")?;
                match python_password(&settings, user) {
                    Some(adopted) => Sensitive::new(adopted.to_owned()),
                    None => crate::identity::generate_password()
                        .map_err(|e| anyhow::anyhow!("cannot generate a password: {e}"))?,
                }
            }
        };
        self.content.insert(Passwords::key(user), password.clone());
        self.changed = true;
        Ok(password)
    }

    /// Makes the key sites share (on a fernet key source): from then on a service user that
    /// no site has yet gets the same password at every site, whichever site makes it first.
    pub fn ensure_site_key(&mut self) -> Result<()> {
        if !self.content.contains_key(SITE_KEY) {
            let key = crate::identity::generate_password()
                .map_err(|e| anyhow::anyhow!("cannot generate a key: {e}"))?;
            self.content.insert(SITE_KEY.to_owned(), key);
            self.changed = true;
        }
        Ok(())
    }

    /// Everything stored: each user's password and the site key.
    pub fn content(&self) -> &crate::juju::SecretContent {
        &self.content
    }

    /// Takes a fernet key source's passwords and site key (from `offered`, whose other
    /// entries are not passwords): the source's password wins for every user it has; a user
    /// only this site has gets the password derived from the source's key, as the source
    /// would give it, so no site changes another's user to a password of its own.
    pub fn adopt(&mut self, offered: &crate::juju::SecretContent) -> Result<()> {
        let Some(key) = offered.get(SITE_KEY) else {
            return Ok(());
        };
        let mut adopted: crate::juju::SecretContent = offered
            .iter()
            .filter(|(k, _)| k.starts_with(USER_PREFIX) || *k == SITE_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for name in self.content.keys() {
            let Some(user) = name.strip_prefix(USER_PREFIX).and_then(user_of_hex) else {
                continue;
            };
            if !adopted.contains_key(name) {
                adopted.insert(name.clone(), derived_password(key, &user)?);
            }
        }
        if adopted != self.content {
            self.content = adopted;
            self.changed = true;
        }
        Ok(())
    }

    /// Replaces a user's password (the rotate-service-user-password action).
    pub fn replace(&mut self, user: &str, password: Sensitive<String>) {
        self.content.insert(Passwords::key(user), password);
        self.changed = true;
    }

    /// Stores them if any was added or replaced (leader only), and bumps their generation so
    /// every unit serves its relations again.
    pub fn store(&self, hook: &Hook<'_>) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        let peers = hook.peers()?;
        cluster::shared::store(
            hook.juju,
            peers,
            &cluster::shared::SERVICE_PASSWORDS,
            &self.content,
        )?;
        let generation = passwords_generation(&peers.app()) + 1;
        peers.set_shared(&[(
            peer_keys::SERVICE_PASSWORDS_GENERATION,
            Some(generation.to_string()),
        )])
    }
}

/// The password the Python charm gave `user`, from its leader settings: `<user>_passwd`, else
/// its peer-storage copy of what it sent a consumer (`identity-service:<n>_service_password`
/// beside `..._service_username`, `identity-credentials:<n>_credentials_password` likewise).
fn python_password<'s>(settings: &'s Databag, user: &str) -> Option<&'s str> {
    let usable = |p: &'s String| Some(p.trim()).filter(|p| !p.is_empty());
    if let Some(password) = settings.get(&format!("{user}_passwd")).and_then(usable) {
        return Some(password);
    }
    const COPIES: [(&str, &str, &str); 2] = [
        (
            "identity-service:",
            "_service_username",
            "_service_password",
        ),
        (
            "identity-credentials:",
            "_credentials_username",
            "_credentials_password",
        ),
    ];
    COPIES
        .iter()
        .find_map(|(endpoint, name_key, password_key)| {
            settings.iter().find_map(|(key, value)| {
                let relation = key.strip_prefix(endpoint)?.strip_suffix(name_key)?;
                (value == user)
                    .then(|| settings.get(&format!("{endpoint}{relation}{password_key}")))
                    .flatten()
                    .and_then(usable)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_python_charms_passwords_are_found_in_its_leader_settings_or_peer_copies() {
        let python = settings(&[
            ("nova_passwd", "nova-pw"),
            ("identity-service:7_service_username", "cinder_cinderv3"),
            ("identity-service:7_service_password", "cinder-pw"),
            ("identity-credentials:9_credentials_username", "tempest"),
            ("identity-credentials:9_credentials_password", "tempest-pw"),
            ("identity-service:8_service_username", "glance"),
            ("identity-service:8_service_password", " "),
        ]);
        assert_eq!(python_password(&python, "nova"), Some("nova-pw"));
        assert_eq!(
            python_password(&python, "cinder_cinderv3"),
            Some("cinder-pw")
        );
        assert_eq!(python_password(&python, "tempest"), Some("tempest-pw"));
        assert_eq!(
            python_password(&python, "glance"),
            None,
            "blank is no password"
        );
        assert_eq!(python_password(&python, "cinder"), None);
        assert_eq!(python_password(&python, "7"), None);
    }
}
