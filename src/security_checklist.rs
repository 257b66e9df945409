//! The `security-checklist` action's audit: the OpenStack Security Guide's identity checks, by
//! the names the Python charm reports them under, run on what the unit has. Each check passes
//! or fails with what to change.

use std::collections::BTreeMap;

/// A path's owner, group and permission bits, as `stat -c '%U %G %a'` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

impl Ownership {
    /// From `stat -c '%U %G %a'` output.
    pub fn parse(text: &str) -> Option<Ownership> {
        let mut fields = text.split_whitespace();
        let owner = fields.next()?.to_owned();
        let group = fields.next()?.to_owned();
        let mode = u32::from_str_radix(fields.next()?, 8).ok()?;
        Some(Ownership { owner, group, mode })
    }
}

/// What the audit reads.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub keystone_conf: String,
    /// keystone-paste.ini, where the package has one.
    pub paste_ini: Option<String>,
    /// /etc/keystone.
    pub config_dir: Option<Ownership>,
    /// keystone.conf, which holds the database's password.
    pub conf_file: Option<Ownership>,
}

type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Sections of `key = value` (the last setting wins; keys as written).
fn ini(text: &str) -> Ini {
    let mut sections = Ini::new();
    let mut section = "DEFAULT".to_owned();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            sections.entry(section.clone()).or_default();
        } else if let Some((key, value)) = line.split_once('=') {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

/// Each check's name and outcome (Err: what is wrong).
pub fn audit(unit: &Unit) -> BTreeMap<&'static str, Result<(), String>> {
    let conf = ini(&unit.keystone_conf);
    let get = |section: &str, key: &str| conf.get(section).and_then(|s| s.get(key));
    let mut results = BTreeMap::new();
    let check = |ok: bool, failure: &str| if ok { Ok(()) } else { Err(failure.to_owned()) };

    let provider = get("token", "provider").map(String::as_str);
    results.insert(
        "uses-sha256-for-hashing-tokens",
        match (conf.contains_key("token"), provider) {
            (false, _) => Err("Missing section 'token'".to_owned()),
            (true, Some(p)) if p.contains("pki") => check(
                get("token", "hash_algorithm").map(String::as_str) == Some("SHA256"),
                "Weak hash algorithm used with PKI provider",
            ),
            (true, _) => Ok(()),
        },
    );
    results.insert(
        "uses-fernet-token-after-default",
        match (conf.contains_key("token"), provider) {
            (false, _) => Err("Missing section 'token'".to_owned()),
            (true, Some(p)) if p != "fernet" => Err("Fernet tokens are not used".to_owned()),
            (true, _) => Ok(()),
        },
    );
    results.insert(
        "check-max-request-body-size",
        check(
            get("DEFAULT", "max_request_body_size").is_some()
                || get("oslo_middleware", "max_request_body_size").is_some(),
            "max_request_body_size should be set",
        ),
    );
    let paste = unit.paste_ini.as_deref().map(ini).unwrap_or_default();
    let paste_token = paste
        .get("filter:admin_token_auth")
        .is_some_and(|s| s.contains_key("AdminTokenAuthMiddleware"));
    results.insert(
        "disable-admin-token",
        if get("DEFAULT", "admin_token").is_some() {
            Err("admin_token should be unset".to_owned())
        } else {
            check(
                !paste_token,
                "AdminTokenAuthMiddleware should be unset in keystone-paste.ini",
            )
        },
    );
    results.insert(
        "insecure-debug-is-false",
        check(
            get("DEFAULT", "insecure_debug").is_none_or(|v| v.eq_ignore_ascii_case("false")),
            "insecure_debug should be false",
        ),
    );
    let dir = unit.config_dir.as_ref();
    results.insert(
        "validate-file-ownership",
        match dir {
            None => Err("/etc/keystone does not exist".to_owned()),
            Some(o) if (o.owner.as_str(), o.group.as_str()) != ("keystone", "keystone") => {
                Err(format!(
                    "/etc/keystone has an incorrect owner: {}:{} should be keystone:keystone",
                    o.owner, o.group
                ))
            }
            Some(_) => Ok(()),
        },
    );
    results.insert(
        "validate-file-permissions",
        match (dir, unit.conf_file.as_ref()) {
            (None, _) => Err("/etc/keystone does not exist".to_owned()),
            (Some(o), _) if o.mode != 0o750 => Err(format!(
                "/etc/keystone has an incorrect mode: {:o} should be 750",
                o.mode
            )),
            (_, Some(conf)) if conf.mode & 0o007 != 0 => Err(format!(
                "/etc/keystone/keystone.conf, which holds the database password, is open to \
                 every user: mode {:o}",
                conf.mode
            )),
            _ => Ok(()),
        },
    );
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ownership(owner: &str, group: &str, mode: u32) -> Option<Ownership> {
        Some(Ownership {
            owner: owner.to_owned(),
            group: group.to_owned(),
            mode,
        })
    }

    fn unit(conf: &str) -> Unit {
        Unit {
            keystone_conf: conf.to_owned(),
            paste_ini: None,
            config_dir: ownership("keystone", "keystone", 0o750),
            conf_file: ownership("root", "keystone", 0o640),
        }
    }

    fn failures(unit: &Unit) -> Vec<(&'static str, String)> {
        audit(unit)
            .into_iter()
            .filter_map(|(name, r)| r.err().map(|e| (name, e)))
            .collect()
    }

    const GOOD: &str = "[DEFAULT]\ndebug = False\n[oslo_middleware]\nmax_request_body_size = 114688\n\
                        [token]\nprovider = fernet\nexpiration = 3600\n";

    #[test]
    fn a_unit_as_the_charm_renders_it_passes_every_check() {
        assert_eq!(
            Ownership::parse("keystone keystone 750\n"),
            ownership("keystone", "keystone", 0o750)
        );
        let results = audit(&unit(GOOD));
        assert_eq!(results.len(), 7);
        assert_eq!(failures(&unit(GOOD)), []);
    }

    #[test]
    fn each_weakness_fails_its_own_check_and_says_what_to_change() {
        let mut weak = unit(
            "[DEFAULT]\nadmin_token = s3cret\ninsecure_debug = True\n[token]\nprovider = uuid\n",
        );
        weak.config_dir = ownership("root", "root", 0o755);
        weak.conf_file = ownership("root", "keystone", 0o644);
        let failed = failures(&weak);
        let names: Vec<&str> = failed.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "check-max-request-body-size",
                "disable-admin-token",
                "insecure-debug-is-false",
                "uses-fernet-token-after-default",
                "validate-file-ownership",
                "validate-file-permissions",
            ]
        );
        assert!(
            failed[4]
                .1
                .contains("root:root should be keystone:keystone")
        );
        assert!(failed[5].1.contains("755 should be 750"));
        let mut open = unit(GOOD);
        open.conf_file = ownership("root", "keystone", 0o644);
        assert!(failures(&open)[0].1.contains("open to every user"));
        let mut paste = unit(GOOD);
        paste.paste_ini = Some("[filter:admin_token_auth]\nAdminTokenAuthMiddleware = x\n".into());
        assert_eq!(failures(&paste)[0].0, "disable-admin-token");
        assert_eq!(
            failures(&unit("[DEFAULT]\n"))[0].0,
            "check-max-request-body-size"
        );
        let pki = unit("[oslo_middleware]\nmax_request_body_size = 1\n[token]\nprovider = pki\n");
        let names: Vec<&str> = failures(&pki).iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "uses-fernet-token-after-default",
                "uses-sha256-for-hashing-tokens"
            ]
        );
    }
}
