//! What Juju asked the charm to do: the dispatch path as a typed event.

use std::fmt;

/// The charm's relation endpoints, as declared in metadata.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    IdentityService,
    IdentityCredentials,
    IdentityAdmin,
    KeystoneService,
    IdentityNotifications,
    NrpeExternalMaster,
    SharedDb,
    Ha,
    Certificates,
    Cluster,
    FernetKeys,
    FernetKeysSource,
    WebssoTrustedDashboard,
    KeystoneMiddleware,
    DomainBackend,
    KeystoneFidServiceProvider,
}

impl Endpoint {
    pub const ALL: [Endpoint; 16] = [
        Endpoint::IdentityService,
        Endpoint::IdentityCredentials,
        Endpoint::IdentityAdmin,
        Endpoint::KeystoneService,
        Endpoint::IdentityNotifications,
        Endpoint::NrpeExternalMaster,
        Endpoint::SharedDb,
        Endpoint::Ha,
        Endpoint::Certificates,
        Endpoint::Cluster,
        Endpoint::FernetKeys,
        Endpoint::FernetKeysSource,
        Endpoint::WebssoTrustedDashboard,
        Endpoint::KeystoneMiddleware,
        Endpoint::DomainBackend,
        Endpoint::KeystoneFidServiceProvider,
    ];

    /// The endpoint's name in metadata.yaml and in relation ids.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::IdentityService => "identity-service",
            Endpoint::IdentityCredentials => "identity-credentials",
            Endpoint::IdentityAdmin => "identity-admin",
            Endpoint::KeystoneService => "keystone-service",
            Endpoint::IdentityNotifications => "identity-notifications",
            Endpoint::NrpeExternalMaster => "nrpe-external-master",
            Endpoint::SharedDb => "shared-db",
            Endpoint::Ha => "ha",
            Endpoint::Certificates => "certificates",
            Endpoint::Cluster => "cluster",
            Endpoint::FernetKeys => "fernet-keys",
            Endpoint::FernetKeysSource => "fernet-keys-source",
            Endpoint::WebssoTrustedDashboard => "websso-trusted-dashboard",
            Endpoint::KeystoneMiddleware => "keystone-middleware",
            Endpoint::DomainBackend => "domain-backend",
            Endpoint::KeystoneFidServiceProvider => "keystone-fid-service-provider",
        }
    }

    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The five relation hooks, in the order Juju fires them over a relation's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RelationHook {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

impl RelationHook {
    pub const ALL: [RelationHook; 5] = [
        RelationHook::Created,
        RelationHook::Joined,
        RelationHook::Changed,
        RelationHook::Departed,
        RelationHook::Broken,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            RelationHook::Created => "created",
            RelationHook::Joined => "joined",
            RelationHook::Changed => "changed",
            RelationHook::Departed => "departed",
            RelationHook::Broken => "broken",
        }
    }
}

/// The secret hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretHook {
    /// A secret this unit consumes has a new revision.
    Changed,
    /// A secret this unit (or, as leader, its application) owns is due for rotation.
    Rotate,
    /// A revision of an owned secret is no longer tracked by anyone.
    Remove,
    Expired,
}

impl SecretHook {
    pub const ALL: [SecretHook; 4] = [
        SecretHook::Changed,
        SecretHook::Rotate,
        SecretHook::Remove,
        SecretHook::Expired,
    ];

    pub fn hook_name(self) -> &'static str {
        match self {
            SecretHook::Changed => "secret-changed",
            SecretHook::Rotate => "secret-rotate",
            SecretHook::Remove => "secret-remove",
            SecretHook::Expired => "secret-expired",
        }
    }
}

/// One hook or action invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Install,
    Start,
    Stop,
    Remove,
    ConfigChanged,
    UpgradeCharm,
    UpdateStatus,
    LeaderElected,
    LeaderSettingsChanged,
    PreSeriesUpgrade,
    PostSeriesUpgrade,
    Relation {
        endpoint: Endpoint,
        hook: RelationHook,
    },
    Secret(SecretHook),
    /// `actions/<name>`; whether the charm has that action is the action dispatcher's business.
    Action(String),
    /// A hook this charm does not know (storage, workload or legacy hooks, or an endpoint it does
    /// not declare): logged and treated as success, as Juju treats a missing hook.
    Unknown(String),
}

const SIMPLE_HOOKS: [(&str, Event); 11] = [
    ("install", Event::Install),
    ("start", Event::Start),
    ("stop", Event::Stop),
    ("remove", Event::Remove),
    ("config-changed", Event::ConfigChanged),
    ("upgrade-charm", Event::UpgradeCharm),
    ("update-status", Event::UpdateStatus),
    ("leader-elected", Event::LeaderElected),
    ("leader-settings-changed", Event::LeaderSettingsChanged),
    ("pre-series-upgrade", Event::PreSeriesUpgrade),
    ("post-series-upgrade", Event::PostSeriesUpgrade),
];

impl Event {
    /// Maps a normalised dispatch path (`hooks/<name>` or `actions/<name>`) to an event.
    pub fn from_dispatch_path(path: &str) -> Event {
        match path.split_once('/') {
            Some(("hooks", name)) => Event::from_hook_name(name),
            Some(("actions", name)) if !name.is_empty() => Event::Action(name.to_owned()),
            _ => Event::Unknown(path.to_owned()),
        }
    }

    /// Maps a hook name such as `identity-service-relation-joined` to an event.
    pub fn from_hook_name(name: &str) -> Event {
        if let Some((_, event)) = SIMPLE_HOOKS.iter().find(|(n, _)| *n == name) {
            return event.clone();
        }
        if let Some(hook) = SecretHook::ALL.into_iter().find(|h| h.hook_name() == name) {
            return Event::Secret(hook);
        }
        if let Some((endpoint, suffix)) = name.rsplit_once("-relation-") {
            let hook = RelationHook::ALL.into_iter().find(|h| h.suffix() == suffix);
            if let (Some(endpoint), Some(hook)) = (Endpoint::from_name(endpoint), hook) {
                return Event::Relation { endpoint, hook };
            }
        }
        Event::Unknown(name.to_owned())
    }

    /// The hook name (or `<action> action`), for logs.
    pub fn name(&self) -> String {
        match self {
            Event::Relation { endpoint, hook } => format!("{endpoint}-relation-{}", hook.suffix()),
            Event::Secret(hook) => hook.hook_name().to_owned(),
            Event::Action(name) => format!("{name} action"),
            Event::Unknown(name) => name.clone(),
            simple => SIMPLE_HOOKS
                .iter()
                .find(|(_, e)| e == simple)
                .map(|(n, _)| (*n).to_owned())
                .unwrap_or_default(),
        }
    }

    /// Every hook name this charm handles: the lifecycle and secret hooks, and the five relation
    /// hooks of each endpoint in metadata.yaml.
    pub fn handled_hook_names() -> Vec<String> {
        let simple = SIMPLE_HOOKS.iter().map(|(n, _)| (*n).to_owned());
        let secret = SecretHook::ALL
            .into_iter()
            .map(|h| h.hook_name().to_owned());
        let relation = Endpoint::ALL.into_iter().flat_map(|e| {
            RelationHook::ALL
                .into_iter()
                .map(move |h| format!("{}-relation-{}", e.name(), h.suffix()))
        });
        simple.chain(secret).chain(relation).collect()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_hooks_map_to_their_events() {
        assert_eq!(Event::from_dispatch_path("hooks/install"), Event::Install);
        assert_eq!(
            Event::from_dispatch_path("hooks/config-changed"),
            Event::ConfigChanged
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/update-status"),
            Event::UpdateStatus
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/leader-settings-changed"),
            Event::LeaderSettingsChanged
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/secret-rotate"),
            Event::Secret(SecretHook::Rotate)
        );
    }

    #[test]
    fn relation_hooks_name_endpoint_and_kind() {
        assert_eq!(
            Event::from_dispatch_path("hooks/identity-service-relation-joined"),
            Event::Relation {
                endpoint: Endpoint::IdentityService,
                hook: RelationHook::Joined
            }
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/nrpe-external-master-relation-broken"),
            Event::Relation {
                endpoint: Endpoint::NrpeExternalMaster,
                hook: RelationHook::Broken
            }
        );
        // Not our endpoint, not a relation hook kind.
        assert_eq!(
            Event::from_dispatch_path("hooks/website-relation-joined"),
            Event::Unknown("website-relation-joined".into())
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/shared-db-relation-exploded"),
            Event::Unknown("shared-db-relation-exploded".into())
        );
    }

    #[test]
    fn actions_and_unknown_paths() {
        assert_eq!(
            Event::from_dispatch_path("actions/pause"),
            Event::Action("pause".into())
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/fernet-keys-storage-attached"),
            Event::Unknown("fernet-keys-storage-attached".into())
        );
        assert_eq!(
            Event::from_dispatch_path("dispatch"),
            Event::Unknown("dispatch".into())
        );
    }

    #[test]
    fn names_round_trip() {
        for name in Event::handled_hook_names() {
            let event = Event::from_hook_name(&name);
            assert!(!matches!(event, Event::Unknown(_)), "{name}");
            assert_eq!(event.name(), name);
        }
        assert_eq!(Event::handled_hook_names().len(), 11 + 4 + 16 * 5);
    }
}
