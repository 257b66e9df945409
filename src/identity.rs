//! The identity objects every deployment needs, as the Python charm's `ensure_initial_admin`
//! makes them: a pure list of objects ([`admin_identity`]) from the configuration and the admin
//! password, and an executor ([`ensure_objects`]) that carries it out through [`KeystoneApi`].
//!
//! The list names objects by name; the executor resolves names to Keystone ids as it goes (so an
//! object can only use objects ensured before it) and reports what changed, so a run that
//! finds everything in place writes nothing.
//!
//! Also here: which admin password to use ([`admin_password_choice`]) and how to make one
//! ([`generate_password`]).

use std::collections::BTreeMap;
use std::fmt;

use crate::addresses::Addresses;
use crate::config::Config;
use crate::keystone_api::{
    Change, DEFAULT_DOMAIN_ID, GrantTarget, Interface, KeystoneApi, KeystoneError, ensure_domain,
    ensure_endpoints, ensure_grant, ensure_project, ensure_region, ensure_role, ensure_service,
    ensure_user,
};
use crate::secret::Sensitive;

/// The domain the cloud admin user and project live in.
pub const ADMIN_DOMAIN: &str = "admin_domain";
/// The domain service users live in.
pub const SERVICE_DOMAIN: &str = "service_domain";
/// The cloud admin project (in admin_domain and, for older clients, in default).
pub const ADMIN_PROJECT: &str = "admin";
/// Keystone's member role (bootstrap creates it; the Python charm's `Member` matches too).
pub const MEMBER_ROLE: &str = "member";
/// The role service users hold.
pub const SERVICE_ROLE: &str = "service";
/// The charm's own admin user, made by `keystone-manage bootstrap` with a system-scoped grant.
pub const CHARM_ADMIN_USER: &str = "_charm-keystone-admin";
/// Keystone's own catalog entry.
pub const IDENTITY_SERVICE: &str = "keystone";
pub const IDENTITY_SERVICE_TYPE: &str = "identity";
pub const IDENTITY_SERVICE_DESCRIPTION: &str = "Keystone Identity Service";
/// Length of a generated admin password.
pub const GENERATED_PASSWORD_LENGTH: usize = 32;

/// Keystone's own endpoint URLs (the same in every region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrls {
    pub public: String,
    pub internal: String,
    pub admin: String,
}

impl EndpointUrls {
    /// On this unit's public, internal and admin hosts (see [`crate::addresses`]), with
    /// service-port (admin-port for admin), the scheme and service-path-prefix.
    pub fn of(config: &Config, hosts: &Addresses) -> EndpointUrls {
        let tls = config.tls.is_some();
        let prefix = &config.service_path_prefix;
        EndpointUrls {
            public: identity_url(tls, &hosts.public, config.service_port, prefix),
            internal: identity_url(tls, &hosts.internal, config.service_port, prefix),
            admin: identity_url(tls, &hosts.admin, config.admin_port, prefix),
        }
    }
}

/// `<scheme>://<host>:<port><prefix>/v3`, with an IPv6 address in brackets.
pub fn identity_url(tls: bool, host: &str, port: u16, path_prefix: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("{scheme}://{host}:{port}{path_prefix}/v3")
}

/// What the admin identity needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    pub admin_user: String,
    pub admin_role: String,
    pub service_tenant: String,
    /// Keystone's endpoints are created in each.
    pub regions: Vec<String>,
    pub endpoint_urls: EndpointUrls,
}

impl IdentitySettings {
    /// From validated config and the endpoint URLs (built with [`identity_url`] from the addresses
    /// the charm resolved, service-port / admin-port and service-path-prefix).
    pub fn from_config(config: &Config, endpoint_urls: EndpointUrls) -> IdentitySettings {
        IdentitySettings {
            admin_user: config.admin_user.clone(),
            admin_role: config.admin_role.clone(),
            service_tenant: config.service_tenant.clone(),
            regions: config.regions.clone(),
            endpoint_urls,
        }
    }
}

/// One object, ensured idempotently. Objects are named by name (and domain name); ids are the executor's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityObject {
    Domain {
        name: String,
    },
    Project {
        domain: String,
        name: String,
    },
    Role {
        name: String,
    },
    User {
        domain: String,
        name: String,
        password: Sensitive<String>,
    },
    /// A service account: a user made with [`crate::keystone_api::SERVICE_USER_OPTIONS`].
    ServiceUser {
        domain: String,
        name: String,
        password: Sensitive<String>,
    },
    /// A user that must exist already (found, never created, its password untouched).
    ExistingUser {
        domain: String,
        name: String,
    },
    ProjectGrant {
        user_domain: String,
        user: String,
        project_domain: String,
        project: String,
        role: String,
    },
    DomainGrant {
        user_domain: String,
        user: String,
        domain: String,
        role: String,
    },
    Service {
        name: String,
        service_type: String,
        description: String,
    },
    Region {
        id: String,
    },
    Endpoints {
        service: String,
        service_type: String,
        region: String,
        urls: Vec<(Interface, String)>,
    },
}

impl fmt::Display for IdentityObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityObject::Domain { name } => write!(f, "domain {name}"),
            IdentityObject::Project { domain, name } => {
                write!(f, "project {name} in domain {domain}")
            }
            IdentityObject::Role { name } => write!(f, "role {name}"),
            IdentityObject::ExistingUser { domain, name } => {
                write!(f, "existing user {name} in domain {domain}")
            }
            IdentityObject::ServiceUser { domain, name, .. } => {
                write!(f, "service user {name} in domain {domain}")
            }
            IdentityObject::User { domain, name, .. } => {
                write!(f, "user {name} in domain {domain}")
            }
            IdentityObject::ProjectGrant {
                user_domain,
                user,
                project_domain,
                project,
                role,
            } => write!(
                f,
                "role {role} for user {user} ({user_domain}) on project {project} ({project_domain})"
            ),
            IdentityObject::DomainGrant {
                user_domain,
                user,
                domain,
                role,
            } => write!(
                f,
                "role {role} for user {user} ({user_domain}) on domain {domain}"
            ),
            IdentityObject::Service {
                name, service_type, ..
            } => write!(f, "service {name} ({service_type})"),
            IdentityObject::Region { id } => write!(f, "region {id}"),
            IdentityObject::Endpoints {
                service, region, ..
            } => write!(f, "{service} endpoints in region {region}"),
        }
    }
}

/// The Python charm's `ensure_initial_admin`, in its order: the domains; the admin and service
/// projects; the service role; the same two projects in `default` (clients that know no
/// domains); the admin user in admin_domain with member and admin-role on its project and
/// admin-role on admin_domain; Keystone's catalog entry and its endpoints in every region.
pub fn admin_identity(
    settings: &IdentitySettings,
    admin_password: &Sensitive<String>,
) -> Vec<IdentityObject> {
    let domain = |name: &str| IdentityObject::Domain {
        name: name.to_owned(),
    };
    let project = |domain: &str, name: &str| IdentityObject::Project {
        domain: domain.to_owned(),
        name: name.to_owned(),
    };
    let role = |name: &str| IdentityObject::Role {
        name: name.to_owned(),
    };
    let admin_project_grant = |role: &str| IdentityObject::ProjectGrant {
        user_domain: ADMIN_DOMAIN.to_owned(),
        user: settings.admin_user.clone(),
        project_domain: ADMIN_DOMAIN.to_owned(),
        project: ADMIN_PROJECT.to_owned(),
        role: role.to_owned(),
    };
    let urls = &settings.endpoint_urls;
    let mut objects = vec![
        domain(DEFAULT_DOMAIN_ID),
        domain(ADMIN_DOMAIN),
        domain(SERVICE_DOMAIN),
        project(ADMIN_DOMAIN, ADMIN_PROJECT),
        project(SERVICE_DOMAIN, &settings.service_tenant),
        role(SERVICE_ROLE),
        project(DEFAULT_DOMAIN_ID, ADMIN_PROJECT),
        project(DEFAULT_DOMAIN_ID, &settings.service_tenant),
        IdentityObject::User {
            domain: ADMIN_DOMAIN.to_owned(),
            name: settings.admin_user.clone(),
            password: admin_password.clone(),
        },
        role(MEMBER_ROLE),
        admin_project_grant(MEMBER_ROLE),
        role(&settings.admin_role),
        admin_project_grant(&settings.admin_role),
        IdentityObject::DomainGrant {
            user_domain: ADMIN_DOMAIN.to_owned(),
            user: settings.admin_user.clone(),
            domain: ADMIN_DOMAIN.to_owned(),
            role: settings.admin_role.clone(),
        },
        IdentityObject::Service {
            name: IDENTITY_SERVICE.to_owned(),
            service_type: IDENTITY_SERVICE_TYPE.to_owned(),
            description: IDENTITY_SERVICE_DESCRIPTION.to_owned(),
        },
    ];
    for region in &settings.regions {
        objects.push(IdentityObject::Region { id: region.clone() });
        objects.push(IdentityObject::Endpoints {
            service: IDENTITY_SERVICE.to_owned(),
            service_type: IDENTITY_SERVICE_TYPE.to_owned(),
            region: region.clone(),
            urls: vec![
                (Interface::Public, urls.public.clone()),
                (Interface::Internal, urls.internal.clone()),
                (Interface::Admin, urls.admin.clone()),
            ],
        });
    }
    objects
}

/// Why ensuring stopped. Objects before it stay done (each is idempotent, so ensuring them again
/// continues where it stopped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnsureError {
    #[error("ensuring {object}: {source}")]
    Keystone {
        object: String,
        #[source]
        source: KeystoneError,
    },
    /// An object uses one that was not ensured before it (a bug in the list, not in Keystone).
    #[error("ensuring {object}: {what} was not ensured by an earlier object")]
    Unresolved { object: String, what: String },
}

/// The ids of what was ensured, by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids(BTreeMap<String, String>);

impl Ids {
    fn key_domain(name: &str) -> String {
        format!("domain\u{1f}{name}")
    }
    fn key_project(domain: &str, name: &str) -> String {
        format!("project\u{1f}{domain}\u{1f}{name}")
    }
    fn key_role_name(name: &str) -> String {
        format!("rolename\u{1f}{}", name.to_ascii_lowercase())
    }
    fn key_role(name: &str) -> String {
        format!("role\u{1f}{}", name.to_ascii_lowercase())
    }
    fn key_user(domain: &str, name: &str) -> String {
        format!("user\u{1f}{domain}\u{1f}{name}")
    }
    fn key_service(name: &str, service_type: &str) -> String {
        format!("service\u{1f}{name}\u{1f}{service_type}")
    }

    pub fn domain(&self, name: &str) -> Option<&str> {
        self.0.get(&Self::key_domain(name)).map(String::as_str)
    }
    /// The project `name` in the domain named `domain`.
    pub fn project(&self, domain: &str, name: &str) -> Option<&str> {
        self.0
            .get(&Self::key_project(domain, name))
            .map(String::as_str)
    }
    /// A role's name as Keystone spells it (roles match whatever the case).
    pub fn role_name(&self, name: &str) -> Option<&str> {
        self.0.get(&Self::key_role_name(name)).map(String::as_str)
    }
    pub fn role(&self, name: &str) -> Option<&str> {
        self.0.get(&Self::key_role(name)).map(String::as_str)
    }
    /// The user `name` in the domain named `domain`.
    pub fn user(&self, domain: &str, name: &str) -> Option<&str> {
        self.0
            .get(&Self::key_user(domain, name))
            .map(String::as_str)
    }
    pub fn service(&self, name: &str, service_type: &str) -> Option<&str> {
        self.0
            .get(&Self::key_service(name, service_type))
            .map(String::as_str)
    }
}

/// What ensuring one object did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The object, as [`IdentityObject`]'s Display words it (never a password).
    pub object: String,
    pub change: Change,
}

/// What ensuring did, and the ids it found (the Python charm kept `admin_domain_id`,
/// `default_domain_id` and `service_tenant_id` in leader settings; identity-service needs them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ensured {
    pub outcomes: Vec<Outcome>,
    pub ids: Ids,
}

impl Ensured {
    /// Whether any object was written to Keystone.
    pub fn changed_anything(&self) -> bool {
        self.outcomes.iter().any(|o| o.change != Change::Unchanged)
    }
}

/// Ensures `objects` in order, stopping at the first failure.
pub fn ensure_objects(
    api: &mut dyn KeystoneApi,
    objects: &[IdentityObject],
) -> Result<Ensured, EnsureError> {
    let mut applied = Ensured::default();
    for object in objects {
        let change = ensure_object(api, object, &mut applied.ids)?;
        applied.outcomes.push(Outcome {
            object: object.to_string(),
            change,
        });
    }
    Ok(applied)
}

fn ensure_object(
    api: &mut dyn KeystoneApi,
    object: &IdentityObject,
    ids: &mut Ids,
) -> Result<Change, EnsureError> {
    let keystone = |source: KeystoneError| EnsureError::Keystone {
        object: object.to_string(),
        source,
    };
    let resolve = |id: Option<&str>, what: String| {
        id.map(str::to_owned)
            .ok_or_else(|| EnsureError::Unresolved {
                object: object.to_string(),
                what,
            })
    };
    match object {
        IdentityObject::Domain { name } => {
            let (domain, change) = ensure_domain(api, name).map_err(keystone)?;
            ids.0.insert(Ids::key_domain(name), domain.id);
            Ok(change)
        }
        IdentityObject::Project { domain, name } => {
            let domain_id = resolve(ids.domain(domain), format!("domain {domain}"))?;
            let (project, change) = ensure_project(api, &domain_id, name).map_err(keystone)?;
            ids.0.insert(Ids::key_project(domain, name), project.id);
            Ok(change)
        }
        IdentityObject::Role { name } => {
            let (role, change) = ensure_role(api, name).map_err(keystone)?;
            ids.0.insert(Ids::key_role(name), role.id);
            ids.0.insert(Ids::key_role_name(name), role.name);
            Ok(change)
        }
        IdentityObject::ServiceUser {
            domain,
            name,
            password,
        } => {
            let domain_id = resolve(ids.domain(domain), format!("domain {domain}"))?;
            let options = crate::keystone_api::SERVICE_USER_OPTIONS;
            let (user, change) =
                ensure_user(api, &domain_id, name, password, &options).map_err(keystone)?;
            ids.0.insert(Ids::key_user(domain, name), user.id);
            Ok(change)
        }
        IdentityObject::ExistingUser { domain, name } => {
            let domain_id = resolve(ids.domain(domain), format!("domain {domain}"))?;
            let user = api
                .find_user(&domain_id, name)
                .map_err(keystone)?
                .ok_or_else(|| EnsureError::Unresolved {
                    object: object.to_string(),
                    what: format!("user {name} ({domain}) does not exist"),
                })?;
            ids.0.insert(Ids::key_user(domain, name), user.id);
            Ok(Change::Unchanged)
        }
        IdentityObject::User {
            domain,
            name,
            password,
        } => {
            let domain_id = resolve(ids.domain(domain), format!("domain {domain}"))?;
            let (user, change) =
                ensure_user(api, &domain_id, name, password, &[]).map_err(keystone)?;
            ids.0.insert(Ids::key_user(domain, name), user.id);
            Ok(change)
        }
        IdentityObject::ProjectGrant {
            user_domain,
            user,
            project_domain,
            project,
            role,
        } => {
            let user_id = resolve(
                ids.user(user_domain, user),
                format!("user {user} ({user_domain})"),
            )?;
            let project_id = resolve(
                ids.project(project_domain, project),
                format!("project {project} ({project_domain})"),
            )?;
            let role_id = resolve(ids.role(role), format!("role {role}"))?;
            let target = GrantTarget::Project { project_id };
            ensure_grant(api, &target, &user_id, &role_id).map_err(keystone)
        }
        IdentityObject::DomainGrant {
            user_domain,
            user,
            domain,
            role,
        } => {
            let user_id = resolve(
                ids.user(user_domain, user),
                format!("user {user} ({user_domain})"),
            )?;
            let domain_id = resolve(ids.domain(domain), format!("domain {domain}"))?;
            let role_id = resolve(ids.role(role), format!("role {role}"))?;
            let target = GrantTarget::Domain { domain_id };
            ensure_grant(api, &target, &user_id, &role_id).map_err(keystone)
        }
        IdentityObject::Service {
            name,
            service_type,
            description,
        } => {
            let (service, change) =
                ensure_service(api, name, service_type, description).map_err(keystone)?;
            ids.0
                .insert(Ids::key_service(name, service_type), service.id);
            Ok(change)
        }
        IdentityObject::Region { id } => ensure_region(api, id).map_err(keystone),
        IdentityObject::Endpoints {
            service,
            service_type,
            region,
            urls,
        } => {
            let service_id = resolve(
                ids.service(service, service_type),
                format!("service {service} ({service_type})"),
            )?;
            let changes = ensure_endpoints(api, &service_id, region, urls).map_err(keystone)?;
            // One outcome for the three: created if any was, else updated if any was.
            Ok(changes
                .iter()
                .map(|(_, change)| *change)
                .find(|c| *c == Change::Created)
                .or_else(|| {
                    changes
                        .iter()
                        .map(|(_, c)| *c)
                        .find(|c| *c == Change::Updated)
                })
                .unwrap_or(Change::Unchanged))
        }
    }
}

/// Where the admin password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPasswordChoice {
    /// admin-password is set (Config has already trimmed it and read `None` as unset).
    FromConfig(Sensitive<String>),
    /// Generated earlier and stored where every unit reads it; it never changes by itself.
    Stored(Sensitive<String>),
    /// Nothing yet: the leader generates one ([`generate_password`]) and stores it before use;
    /// other units wait for it.
    GenerateNew,
}

/// Config wins (an operator's explicit choice); otherwise the stored password; otherwise a new
/// one. An empty stored value counts as none.
pub fn admin_password_choice(
    from_config: Option<&Sensitive<String>>,
    stored: Option<&Sensitive<String>>,
) -> AdminPasswordChoice {
    if let Some(password) = from_config.filter(|p| !p.expose().is_empty()) {
        return AdminPasswordChoice::FromConfig(password.clone());
    }
    match stored.filter(|p| !p.expose().is_empty()) {
        Some(password) => AdminPasswordChoice::Stored(password.clone()),
        None => AdminPasswordChoice::GenerateNew,
    }
}

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Appends the letters and digits `bytes` give to `password` until it is long enough. Bytes of
/// 248 (= 4 × 62, the largest multiple of the alphabet's size in a byte) and above are skipped,
/// so every character is equally likely.
fn fill_alphanumeric(password: &mut String, bytes: &[u8]) {
    for byte in bytes {
        if *byte < 248 && password.len() < GENERATED_PASSWORD_LENGTH {
            password.push(char::from(ALPHANUMERIC[usize::from(byte % 62)]));
        }
    }
}

/// A password of [`GENERATED_PASSWORD_LENGTH`] letters and digits from the OS CSPRNG (about 190
/// bits).
pub fn generate_password() -> Result<Sensitive<String>, getrandom::Error> {
    let mut password = String::with_capacity(GENERATED_PASSWORD_LENGTH);
    let mut buffer = [0u8; 64];
    while password.len() < GENERATED_PASSWORD_LENGTH {
        getrandom::fill(&mut buffer)?;
        fill_alphanumeric(&mut password, &buffer);
    }
    Ok(Sensitive::new(password))
}

/// The password of [`GENERATED_PASSWORD_LENGTH`] letters and digits that `key` gives `name`:
/// HMAC-SHA-256 under `key` of `name`, 0 and a block counter, as many blocks as it takes. Whoever
/// holds the key derives the same password; without it, it is as unguessable as a generated one.
pub fn derived_password(key: &Sensitive<String>, name: &str) -> Result<Sensitive<String>, String> {
    use hmac::{KeyInit as _, Mac as _};
    let mut password = String::with_capacity(GENERATED_PASSWORD_LENGTH);
    for block in 0u8..=u8::MAX {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.expose().as_bytes())
            .map_err(|e| format!("unusable key: {e}"))?;
        mac.update(name.as_bytes());
        mac.update(&[0, block]);
        fill_alphanumeric(&mut password, &mac.finalize().into_bytes());
        if password.len() == GENERATED_PASSWORD_LENGTH {
            return Ok(Sensitive::new(password));
        }
    }
    Err(format!("no password could be derived for {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystone_api::memory::MemoryKeystone;
    use crate::keystone_api::{DomainRef, PasswordCredentials, Scope};

    fn settings() -> IdentitySettings {
        IdentitySettings {
            admin_user: "admin".into(),
            admin_role: "Admin".into(),
            service_tenant: "services".into(),
            regions: vec!["RegionOne".into(), "RegionTwo".into()],
            endpoint_urls: EndpointUrls {
                public: identity_url(false, "10.0.0.1", 5000, "/api/idm"),
                internal: identity_url(false, "10.0.0.1", 5000, "/api/idm"),
                admin: identity_url(false, "10.0.0.1", 35357, "/api/idm"),
            },
        }
    }

    fn pw(text: &str) -> Sensitive<String> {
        Sensitive::new(text.to_owned())
    }

    #[test]
    fn urls_carry_the_prefix_and_bracket_ipv6() {
        assert_eq!(
            identity_url(false, "10.0.0.1", 5000, ""),
            "http://10.0.0.1:5000/v3"
        );
        assert_eq!(
            identity_url(true, "fd00::1", 35357, "/api/idm"),
            "https://[fd00::1]:35357/api/idm/v3"
        );
        assert_eq!(
            identity_url(false, "[fd00::1]", 5000, ""),
            "http://[fd00::1]:5000/v3"
        );
    }

    #[test]
    fn the_plan_follows_ensure_initial_admin() {
        let objects = admin_identity(&settings(), &pw("secret"));
        let words: Vec<String> = objects.iter().map(IdentityObject::to_string).collect();
        assert_eq!(
            words,
            [
                "domain default",
                "domain admin_domain",
                "domain service_domain",
                "project admin in domain admin_domain",
                "project services in domain service_domain",
                "role service",
                "project admin in domain default",
                "project services in domain default",
                "user admin in domain admin_domain",
                "role member",
                "role member for user admin (admin_domain) on project admin (admin_domain)",
                "role Admin",
                "role Admin for user admin (admin_domain) on project admin (admin_domain)",
                "role Admin for user admin (admin_domain) on domain admin_domain",
                "service keystone (identity)",
                "region RegionOne",
                "keystone endpoints in region RegionOne",
                "region RegionTwo",
                "keystone endpoints in region RegionTwo",
            ]
        );
        assert!(
            !format!("{objects:?}").contains("secret"),
            "the objects's Debug hides the password"
        );
        assert_eq!(
            objects.last(),
            Some(&IdentityObject::Endpoints {
                service: "keystone".into(),
                service_type: "identity".into(),
                region: "RegionTwo".into(),
                urls: vec![
                    (Interface::Public, "http://10.0.0.1:5000/api/idm/v3".into()),
                    (
                        Interface::Internal,
                        "http://10.0.0.1:5000/api/idm/v3".into()
                    ),
                    (Interface::Admin, "http://10.0.0.1:35357/api/idm/v3".into()),
                ],
            })
        );
    }

    #[test]
    fn applying_twice_changes_nothing_the_second_time() {
        let mut api = MemoryKeystone::bootstrapped();
        let objects = admin_identity(&settings(), &pw("secret"));
        let first = ensure_objects(&mut api, &objects).unwrap();
        assert!(first.changed_anything());
        let writes = api.request_count().writes;
        let second = ensure_objects(&mut api, &objects).unwrap();
        assert!(!second.changed_anything(), "{:?}", second.outcomes);
        assert_eq!(api.request_count().writes, writes);
        assert_eq!(first.ids, second.ids);
        assert!(second.ids.domain(ADMIN_DOMAIN).is_some());
        assert!(second.ids.project(SERVICE_DOMAIN, "services").is_some());
        assert_eq!(api.endpoints.len(), 6);

        // The admin user can now get a token scoped to its project.
        let credentials = PasswordCredentials {
            user_name: "admin".into(),
            user_domain: DomainRef::Name(ADMIN_DOMAIN.into()),
            password: pw("secret"),
        };
        let scope = Scope::Project {
            name: ADMIN_PROJECT.into(),
            domain: DomainRef::Name(ADMIN_DOMAIN.into()),
        };
        assert!(api.authenticate(&credentials, &scope).is_ok());
    }

    #[test]
    fn a_new_password_or_address_changes_only_those() {
        let mut api = MemoryKeystone::bootstrapped();
        ensure_objects(&mut api, &admin_identity(&settings(), &pw("one"))).unwrap();
        let mut moved = settings();
        moved.endpoint_urls.public = identity_url(false, "10.0.0.9", 5000, "/api/idm");
        let applied = ensure_objects(&mut api, &admin_identity(&moved, &pw("two"))).unwrap();
        let changed: Vec<(&str, Change)> = applied
            .outcomes
            .iter()
            .filter(|o| o.change != Change::Unchanged)
            .map(|o| (o.object.as_str(), o.change))
            .collect();
        assert_eq!(
            changed,
            [
                ("user admin in domain admin_domain", Change::Updated),
                ("keystone endpoints in region RegionOne", Change::Updated),
                ("keystone endpoints in region RegionTwo", Change::Updated),
            ]
        );
    }

    #[test]
    fn a_failure_names_the_step_and_stops() {
        let mut api = MemoryKeystone::bootstrapped();
        api.fail_writes = true;
        let err =
            ensure_objects(&mut api, &admin_identity(&settings(), &pw("secret"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ensuring domain admin_domain: Keystone refused POST /v3/domains: HTTP 503: \
             Service Unavailable"
        );
        assert_eq!(
            api.request_count().writes,
            1,
            "stopped at the first failure"
        );
    }

    #[test]
    fn a_plan_out_of_order_is_refused_before_keystone_sees_it() {
        let mut api = MemoryKeystone::bootstrapped();
        let objects = [IdentityObject::Project {
            domain: ADMIN_DOMAIN.into(),
            name: ADMIN_PROJECT.into(),
        }];
        let err = ensure_objects(&mut api, &objects).unwrap_err();
        assert!(matches!(err, EnsureError::Unresolved { .. }), "{err}");
        assert_eq!(api.request_count().total, 0);
    }

    #[test]
    fn config_then_stored_then_new() {
        let set = pw("from-config");
        let stored = pw("stored");
        let empty = pw("");
        assert_eq!(
            admin_password_choice(Some(&set), Some(&stored)),
            AdminPasswordChoice::FromConfig(set.clone())
        );
        assert_eq!(
            admin_password_choice(None, Some(&stored)),
            AdminPasswordChoice::Stored(stored.clone())
        );
        assert_eq!(
            admin_password_choice(None, None),
            AdminPasswordChoice::GenerateNew
        );
        assert_eq!(
            admin_password_choice(Some(&empty), Some(&empty)),
            AdminPasswordChoice::GenerateNew
        );
    }

    #[test]
    fn config_none_means_the_stored_password() {
        let config = crate::config::Config::from_options(
            serde_json::json!({"admin-password": "  None "})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let stored = pw("stored");
        assert_eq!(
            admin_password_choice(config.admin_password.as_ref(), Some(&stored)),
            AdminPasswordChoice::Stored(stored)
        );
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose().len(), GENERATED_PASSWORD_LENGTH);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn derived_passwords_depend_on_the_key_and_the_name_only() {
        let key = Sensitive::new("k".repeat(32));
        let nova = derived_password(&key, "nova").unwrap();
        assert_eq!(nova.expose().len(), GENERATED_PASSWORD_LENGTH);
        assert!(nova.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(derived_password(&key, "nova").unwrap(), nova);
        assert_ne!(derived_password(&key, "glance").unwrap(), nova);
        let other = Sensitive::new("j".repeat(32));
        assert_ne!(derived_password(&other, "nova").unwrap(), nova);
        // The same derivation done with Python's hmac module: any site, any implementation
        // that follows it gives the same password.
        assert_eq!(nova.expose(), "VMBG5yNdjaeWMZ2vah8fN7SkZvWVaN3K");
    }
}
