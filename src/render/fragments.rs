//! What a relation adds to keystone.conf and to the Apache vhost: an LDAP domain's driver
//! settings, a federation protocol's options and Apache files, a trusted dashboard, a
//! middleware's options; and when Keystone must restart (the policy overrides' step says so
//! too). A step before keystone-files adds its [`Fragments`] to the hook's facts; the
//! workload's plan folds them into the one [`KeystoneConf`](super::KeystoneConf) and
//! [`Vhost`](super::Vhost), and every value is checked by the rules every rendered value is.

use super::{KEYSTONE_CONF, RenderError, VHOST, ini_value, one_line, unsafe_value};

/// How a fragment's option goes into keystone.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfKind {
    /// `key = value`, set once: a second setting of the key (the charm's own or another
    /// fragment's) refuses the whole file.
    Set,
    /// One `key = value` line per fragment: a multi-valued option (`[federation]
    /// trusted_dashboard`).
    Repeat,
    /// An item added to a list the charm renders itself ([`LIST_OPTIONS`]): `[auth] methods`.
    ListItem,
    /// An item taken out of such a list: a federation takes `external` out of `[auth]
    /// methods`, as the Python charm does, so a `REMOTE_USER` Apache sets is never read as a
    /// local user.
    ListRemoval,
}

/// The list options of the charm's own keystone.conf a fragment may add to.
pub const LIST_OPTIONS: [(&str, &str); 1] = [("auth", "methods")];

/// One keystone.conf option a relation sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFragment {
    pub section: String,
    pub key: String,
    pub value: String,
    pub kind: ConfKind,
}

impl ConfFragment {
    pub fn set(section: &str, key: &str, value: impl Into<String>) -> ConfFragment {
        ConfFragment::new(section, key, value, ConfKind::Set)
    }

    pub fn repeat(section: &str, key: &str, value: impl Into<String>) -> ConfFragment {
        ConfFragment::new(section, key, value, ConfKind::Repeat)
    }

    pub fn list_item(section: &str, key: &str, value: impl Into<String>) -> ConfFragment {
        ConfFragment::new(section, key, value, ConfKind::ListItem)
    }

    pub fn list_removal(section: &str, key: &str, value: impl Into<String>) -> ConfFragment {
        ConfFragment::new(section, key, value, ConfKind::ListRemoval)
    }

    fn new(section: &str, key: &str, value: impl Into<String>, kind: ConfKind) -> ConfFragment {
        ConfFragment {
            section: section.to_owned(),
            key: key.to_owned(),
            value: value.into(),
            kind,
        }
    }
}

/// One line a relation adds to every virtual host of the vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VhostFragment {
    /// `IncludeOptional <pattern>`: a subordinate's Apache files (mod_auth_mellon's,
    /// mod_auth_openidc's, Kerberos'), read when they exist.
    IncludeOptional(String),
    /// Keystone's application also at this URL path, before `/` (the `/krb` alias, which a
    /// Kerberos module authenticates).
    KeystoneAlias(String),
}

/// Everything the relations add to the workload's files in one hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragments {
    pub conf: Vec<ConfFragment>,
    pub vhost: Vec<VhostFragment>,
    /// Why Keystone must restart though keystone.conf may not have changed: an LDAP domain's
    /// files, which Keystone reads once per process, or the policy overrides changed.
    pub restart: Vec<String>,
}

impl Fragments {
    pub fn extend(&mut self, more: Fragments) {
        self.conf.extend(more.conf);
        self.vhost.extend(more.vhost);
        self.restart.extend(more.restart);
    }
}

/// A section of options, as the template renders it.
#[derive(Debug, serde::Serialize)]
pub(super) struct SectionView {
    pub name: String,
    pub options: Vec<super::ConfOption>,
}

/// A section or option name: what oslo.config reads as one, with nothing that could end the
/// line or the header.
fn conf_name(field: &'static str, name: &str) -> Result<(), RenderError> {
    one_line(field, KEYSTONE_CONF, name)?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return unsafe_value(
            field,
            KEYSTONE_CONF,
            "names are lower-case letters, digits, _ and -",
        );
    }
    Ok(())
}

/// Whether one option a relation gives can go into keystone.conf on its own: a section and
/// key oslo.config reads as one, a value that stays on its line. (Whether the charm or another
/// relation sets the option already is known only when the file is rendered.)
pub fn check_conf(fragment: &ConfFragment) -> Result<(), RenderError> {
    conf_name("a relation's keystone.conf section", &fragment.section)?;
    conf_name("a relation's keystone.conf option", &fragment.key)?;
    ini_value("a relation's keystone.conf value", &fragment.value).map(drop)
}

/// The charm's own keystone.conf sections and options (section, key), as rendered in `text`.
fn settings(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if !line.starts_with('#')
            && let Some((key, _)) = line.split_once('=')
        {
            found.push((section.clone(), key.trim().to_owned()));
        }
    }
    found
}

/// An item added to, or taken out of, a list the charm renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListEdit {
    pub section: String,
    pub key: String,
    pub item: String,
    pub add: bool,
}

/// What the fragments add to keystone.conf, checked.
pub(super) struct ConfAdditions {
    /// Changes to the lists the charm renders, in the order given.
    pub list_edits: Vec<ListEdit>,
    /// The other options, grouped by section in the order given.
    pub sections: Vec<SectionView>,
}

/// Checks `fragments` against the charm's own keystone.conf (`own`, rendered without them).
pub(super) fn conf_view(
    fragments: &[ConfFragment],
    own: &str,
) -> Result<ConfAdditions, RenderError> {
    let own = settings(own);
    let mut items = Vec::new();
    let mut sections: Vec<SectionView> = Vec::new();
    for (i, fragment) in fragments.iter().enumerate() {
        conf_name("a relation's keystone.conf section", &fragment.section)?;
        conf_name("a relation's keystone.conf option", &fragment.key)?;
        let value = ini_value("a relation's keystone.conf value", &fragment.value)?;
        let place = (fragment.section.as_str(), fragment.key.as_str());
        match fragment.kind {
            ConfKind::ListItem | ConfKind::ListRemoval => {
                if !LIST_OPTIONS.contains(&place) {
                    return unsafe_value(
                        "a relation's keystone.conf list item",
                        KEYSTONE_CONF,
                        "the charm renders no such list",
                    );
                }
                if value.contains(',') || value.contains(char::is_whitespace) {
                    return unsafe_value(
                        "a relation's keystone.conf list item",
                        KEYSTONE_CONF,
                        "a list item may not hold , or spaces",
                    );
                }
                items.push(ListEdit {
                    section: place.0.to_owned(),
                    key: place.1.to_owned(),
                    item: value,
                    add: fragment.kind == ConfKind::ListItem,
                });
                continue;
            }
            ConfKind::Set | ConfKind::Repeat => {}
        }
        let same = |other: &ConfFragment| other.section == place.0 && other.key == place.1;
        let twice = own.iter().any(|(s, k)| s == place.0 && k == place.1)
            || fragments[..i].iter().any(|other| {
                same(other)
                    && !(other.kind == ConfKind::Repeat && fragment.kind == ConfKind::Repeat)
            });
        if twice {
            return Err(RenderError::SetTwice {
                section: fragment.section.clone(),
                key: fragment.key.clone(),
            });
        }
        let option = super::ConfOption {
            key: fragment.key.clone(),
            value,
        };
        match sections.iter_mut().find(|s| s.name == fragment.section) {
            Some(section) => section.options.push(option),
            None => sections.push(SectionView {
                name: fragment.section.clone(),
                options: vec![option],
            }),
        }
    }
    Ok(ConfAdditions {
        list_edits: items,
        sections,
    })
}

/// What the vhost template renders of `fragments`.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct VhostFragmentsView {
    pub includes: Vec<String>,
    pub aliases: Vec<String>,
}

/// A file pattern of IncludeOptional: an absolute path, with Apache's wildcards.
fn include_pattern(pattern: &str) -> Result<String, RenderError> {
    let field = "a relation's IncludeOptional";
    one_line(field, VHOST, pattern)?;
    if !pattern.starts_with('/')
        || !pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-*?".contains(c))
    {
        return unsafe_value(
            field,
            VHOST,
            "a pattern is an absolute path of letters, digits and / . _ - * ?",
        );
    }
    Ok(pattern.to_owned())
}

pub(super) fn vhost_view(fragments: &[VhostFragment]) -> Result<VhostFragmentsView, RenderError> {
    let mut view = VhostFragmentsView::default();
    for fragment in fragments {
        match fragment {
            VhostFragment::IncludeOptional(pattern) => {
                let pattern = include_pattern(pattern)?;
                if !view.includes.contains(&pattern) {
                    view.includes.push(pattern);
                }
            }
            VhostFragment::KeystoneAlias(url_path) => {
                super::url_path("a relation's WSGIScriptAlias", url_path)?;
                if !view.aliases.contains(url_path) {
                    view.aliases.push(url_path.clone());
                }
            }
        }
    }
    Ok(view)
}
