//! Keystone's identity API (v3), as far as the charm uses it.
//!
//! Everything the charm asks of Keystone goes through the [`KeystoneApi`] trait: small lookups,
//! creations and updates, one HTTP request each. The idempotent `ensure_*` functions here build on
//! them (look up, then create or update only what differs), so the same logic runs against the
//! real client ([`http::HttpKeystone`], the only code that speaks HTTP) and the in-memory twin
//! the charm's tests use (`memory::MemoryKeystone`, built for tests and the `testkit` feature).
//!
//! Names are matched as Keystone matches them where it matters: role names case-insensitively
//! (Keystone's MySQL collation does, and the Python charm created `Member` where Keystone's
//! bootstrap now creates `member`; creating the other spelling would fail with 409).

pub mod http;
#[cfg(any(test, feature = "testkit"))]
pub mod memory;

use std::fmt;

use crate::secret::Sensitive;

/// Keystone's own domain, created by `keystone-manage bootstrap` with this id (name `Default`).
pub const DEFAULT_DOMAIN_ID: &str = "default";

/// Why a Keystone request failed. Never carries a password: request bodies are not echoed, and
/// the real client scrubs any password it sent from Keystone's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoneError {
    /// No HTTP answer: connection refused, timeout, TLS failure.
    #[error("Keystone at {url} did not answer {method} {path}: {reason}")]
    Unreachable {
        url: String,
        method: &'static str,
        path: String,
        reason: String,
    },
    /// Keystone answered with an error status.
    #[error("Keystone refused {method} {path}: HTTP {status}: {message}")]
    Http {
        method: &'static str,
        path: String,
        status: u16,
        /// Keystone's `error.message`, or the start of the body when it sent none.
        message: String,
    },
    /// Keystone answered with a success status but not with what the API promises.
    #[error("Keystone's answer to {method} {path} is not what the v3 API describes: {reason}")]
    BadResponse {
        method: &'static str,
        path: String,
        reason: String,
    },
    /// The client was set up wrongly (a value the charm should have validated earlier).
    #[error("Keystone client: {0}")]
    Setup(String),
}

impl KeystoneError {
    /// The HTTP status Keystone answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            KeystoneError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Keystone did not accept the credentials (wrong password, unknown or disabled user).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }
}

pub type KeystoneResult<T> = Result<T, KeystoneError>;

/// How a user names its domain when authenticating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// A password credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredentials {
    pub user_name: String,
    pub user_domain: DomainRef,
    pub password: Sensitive<String>,
}

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope: proves the password, grants nothing.
    Unscoped,
    /// The whole deployment (`{"system": {"all": true}}`), as `keystone-manage bootstrap` grants
    /// the charm's own admin user.
    System,
    Project {
        name: String,
        domain: DomainRef,
    },
}

/// A token Keystone issued (`X-Subject-Token`).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub id: Sensitive<String>,
    pub user_id: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogService {
    pub id: String,
    pub name: String,
    pub service_type: String,
}

/// The three endpoint interfaces of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interface {
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub const ALL: [Interface; 3] = [Interface::Public, Interface::Internal, Interface::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| i.as_str() == text)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEndpoint {
    pub id: String,
    pub service_id: String,
    pub interface: Interface,
    pub region_id: String,
    pub url: String,
}

/// Where a role is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantTarget {
    Project { project_id: String },
    Domain { domain_id: String },
}

/// One request each; the only way the charm talks to Keystone. Lookups return `None` when the
/// object does not exist; every other failure is an error.
pub trait KeystoneApi {
    /// `GET <prefix>/v3` answered 200: Keystone on this unit serves its API (the readiness
    /// check; no token needed).
    fn version_available(&mut self) -> KeystoneResult<bool>;

    /// Authenticates and sends that token with every later request of this client.
    fn login(&mut self, credentials: &PasswordCredentials, scope: &Scope) -> KeystoneResult<()>;

    /// Issues a token for `credentials`. A wrong password is `Err` with status 401.
    fn authenticate(
        &mut self,
        credentials: &PasswordCredentials,
        scope: &Scope,
    ) -> KeystoneResult<Token>;

    fn domain_by_id(&mut self, id: &str) -> KeystoneResult<Option<Domain>>;
    fn find_domain(&mut self, name: &str) -> KeystoneResult<Option<Domain>>;
    fn create_domain(&mut self, name: &str, description: &str) -> KeystoneResult<Domain>;

    fn find_project(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<Project>>;
    fn create_project(
        &mut self,
        domain_id: &str,
        name: &str,
        description: &str,
    ) -> KeystoneResult<Project>;

    /// Every global role (roles not owned by a domain).
    fn list_roles(&mut self) -> KeystoneResult<Vec<Role>>;
    fn create_role(&mut self, name: &str) -> KeystoneResult<Role>;

    fn find_user(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<User>>;
    /// Creates an enabled user with these user options set to true (e.g. [`SERVICE_USER_OPTIONS`]).
    fn create_user(
        &mut self,
        domain_id: &str,
        name: &str,
        password: &Sensitive<String>,
        options: &[&str],
    ) -> KeystoneResult<User>;
    fn set_password(&mut self, user_id: &str, password: &Sensitive<String>) -> KeystoneResult<()>;
    /// Whether `password` is the user's current password (an unscoped authentication; Keystone
    /// offers no other way to compare).
    fn password_matches(
        &mut self,
        user_id: &str,
        password: &Sensitive<String>,
    ) -> KeystoneResult<bool>;

    fn has_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<bool>;
    fn grant_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<()>;

    fn region_exists(&mut self, id: &str) -> KeystoneResult<bool>;
    fn create_region(&mut self, id: &str) -> KeystoneResult<()>;

    fn find_service(
        &mut self,
        name: &str,
        service_type: &str,
    ) -> KeystoneResult<Option<CatalogService>>;
    fn create_service(
        &mut self,
        name: &str,
        service_type: &str,
        description: &str,
    ) -> KeystoneResult<CatalogService>;

    fn list_endpoints(&mut self, service_id: &str) -> KeystoneResult<Vec<CatalogEndpoint>>;
    fn create_endpoint(
        &mut self,
        service_id: &str,
        interface: Interface,
        region_id: &str,
        url: &str,
    ) -> KeystoneResult<CatalogEndpoint>;
    fn set_endpoint_url(&mut self, endpoint_id: &str, url: &str) -> KeystoneResult<()>;

    /// Requests sent so far, and how many of them asked Keystone to change something.
    fn request_count(&self) -> RequestCount;
}

/// Opens a client to the Keystone API on this unit (the real one over HTTP, or the in-memory
/// twin). A hook opens at most one and shares it between its steps.
pub trait KeystoneConnector {
    fn connect<'a>(
        &'a self,
        endpoint: &http::LocalEndpoint,
    ) -> anyhow::Result<Box<dyn KeystoneApi + 'a>>;
}

/// A guard over a client is a client: the in-memory twin lends its one Keystone this way.
impl<G, K> KeystoneApi for G
where
    G: std::ops::DerefMut<Target = K>,
    K: KeystoneApi + ?Sized,
{
    fn version_available(&mut self) -> KeystoneResult<bool> {
        (**self).version_available()
    }
    fn login(&mut self, credentials: &PasswordCredentials, scope: &Scope) -> KeystoneResult<()> {
        (**self).login(credentials, scope)
    }
    fn authenticate(
        &mut self,
        credentials: &PasswordCredentials,
        scope: &Scope,
    ) -> KeystoneResult<Token> {
        (**self).authenticate(credentials, scope)
    }
    fn domain_by_id(&mut self, id: &str) -> KeystoneResult<Option<Domain>> {
        (**self).domain_by_id(id)
    }
    fn find_domain(&mut self, name: &str) -> KeystoneResult<Option<Domain>> {
        (**self).find_domain(name)
    }
    fn create_domain(&mut self, name: &str, description: &str) -> KeystoneResult<Domain> {
        (**self).create_domain(name, description)
    }
    fn find_project(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<Project>> {
        (**self).find_project(domain_id, name)
    }
    fn create_project(
        &mut self,
        domain_id: &str,
        name: &str,
        description: &str,
    ) -> KeystoneResult<Project> {
        (**self).create_project(domain_id, name, description)
    }
    fn list_roles(&mut self) -> KeystoneResult<Vec<Role>> {
        (**self).list_roles()
    }
    fn create_role(&mut self, name: &str) -> KeystoneResult<Role> {
        (**self).create_role(name)
    }
    fn find_user(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<User>> {
        (**self).find_user(domain_id, name)
    }
    fn create_user(
        &mut self,
        domain_id: &str,
        name: &str,
        password: &Sensitive<String>,
        options: &[&str],
    ) -> KeystoneResult<User> {
        (**self).create_user(domain_id, name, password, options)
    }
    fn set_password(&mut self, user_id: &str, password: &Sensitive<String>) -> KeystoneResult<()> {
        (**self).set_password(user_id, password)
    }
    fn password_matches(
        &mut self,
        user_id: &str,
        password: &Sensitive<String>,
    ) -> KeystoneResult<bool> {
        (**self).password_matches(user_id, password)
    }
    fn has_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<bool> {
        (**self).has_role(target, user_id, role_id)
    }
    fn grant_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<()> {
        (**self).grant_role(target, user_id, role_id)
    }
    fn region_exists(&mut self, id: &str) -> KeystoneResult<bool> {
        (**self).region_exists(id)
    }
    fn create_region(&mut self, id: &str) -> KeystoneResult<()> {
        (**self).create_region(id)
    }
    fn find_service(
        &mut self,
        name: &str,
        service_type: &str,
    ) -> KeystoneResult<Option<CatalogService>> {
        (**self).find_service(name, service_type)
    }
    fn create_service(
        &mut self,
        name: &str,
        service_type: &str,
        description: &str,
    ) -> KeystoneResult<CatalogService> {
        (**self).create_service(name, service_type, description)
    }
    fn list_endpoints(&mut self, service_id: &str) -> KeystoneResult<Vec<CatalogEndpoint>> {
        (**self).list_endpoints(service_id)
    }
    fn create_endpoint(
        &mut self,
        service_id: &str,
        interface: Interface,
        region: &str,
        url: &str,
    ) -> KeystoneResult<CatalogEndpoint> {
        (**self).create_endpoint(service_id, interface, region, url)
    }
    fn set_endpoint_url(&mut self, endpoint_id: &str, url: &str) -> KeystoneResult<()> {
        (**self).set_endpoint_url(endpoint_id, url)
    }
    fn request_count(&self) -> RequestCount {
        (**self).request_count()
    }
}

/// Requests a client has sent (for "nothing changed, nothing sent" checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestCount {
    /// Every request, authentication included.
    pub total: u64,
    /// POST (except authentication), PUT, PATCH and DELETE.
    pub writes: u64,
}

/// What an ensure operation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Already as wanted; nothing was written.
    Unchanged,
    Created,
    Updated,
}

/// The domain named `name`, created when missing. The default domain is found by its id (it is
/// named `Default`, and bootstrap made it); asking for `default` never creates a second one.
pub fn ensure_domain(api: &mut dyn KeystoneApi, name: &str) -> KeystoneResult<(Domain, Change)> {
    if name == DEFAULT_DOMAIN_ID {
        return match api.domain_by_id(DEFAULT_DOMAIN_ID)? {
            Some(domain) => Ok((domain, Change::Unchanged)),
            None => Err(KeystoneError::BadResponse {
                method: "GET",
                path: format!("/v3/domains/{DEFAULT_DOMAIN_ID}"),
                reason: "the default domain is missing; keystone-manage bootstrap creates it"
                    .to_owned(),
            }),
        };
    }
    if let Some(domain) = api.find_domain(name)? {
        return Ok((domain, Change::Unchanged));
    }
    let created = api.create_domain(name, "Created by the Keystone charm")?;
    Ok((created, Change::Created))
}

pub fn ensure_project(
    api: &mut dyn KeystoneApi,
    domain_id: &str,
    name: &str,
) -> KeystoneResult<(Project, Change)> {
    if let Some(project) = api.find_project(domain_id, name)? {
        return Ok((project, Change::Unchanged));
    }
    let created = api.create_project(domain_id, name, "Created by the Keystone charm")?;
    Ok((created, Change::Created))
}

/// The global role named `name`, matched case-insensitively (see the module doc).
pub fn ensure_role(api: &mut dyn KeystoneApi, name: &str) -> KeystoneResult<(Role, Change)> {
    let existing = api
        .list_roles()?
        .into_iter()
        .find(|role| role.name.eq_ignore_ascii_case(name));
    if let Some(role) = existing {
        return Ok((role, Change::Unchanged));
    }
    Ok((api.create_role(name)?, Change::Created))
}

/// The user `name` in `domain_id` with `password`: created when missing; otherwise the password is
/// compared by authenticating with it and set only when it differs. Setting it unconditionally
/// would write on every hook and trip Keystone's password-history rules
/// (`unique_last_password_count`, `minimum_password_age`).
/// User options a service account gets, so that password-security-compliance (expiry, forced
/// change at first use) never locks a service out, as the Python charm protects them.
pub const SERVICE_USER_OPTIONS: [&str; 2] = [
    "ignore_change_password_upon_first_use",
    "ignore_password_expiry",
];

pub fn ensure_user(
    api: &mut dyn KeystoneApi,
    domain_id: &str,
    name: &str,
    password: &Sensitive<String>,
    options: &[&str],
) -> KeystoneResult<(User, Change)> {
    match api.find_user(domain_id, name)? {
        None => Ok((
            api.create_user(domain_id, name, password, options)?,
            Change::Created,
        )),
        Some(user) => {
            if api.password_matches(&user.id, password)? {
                Ok((user, Change::Unchanged))
            } else {
                api.set_password(&user.id, password)?;
                Ok((user, Change::Updated))
            }
        }
    }
}

pub fn ensure_grant(
    api: &mut dyn KeystoneApi,
    target: &GrantTarget,
    user_id: &str,
    role_id: &str,
) -> KeystoneResult<Change> {
    if api.has_role(target, user_id, role_id)? {
        return Ok(Change::Unchanged);
    }
    api.grant_role(target, user_id, role_id)?;
    Ok(Change::Created)
}

pub fn ensure_region(api: &mut dyn KeystoneApi, id: &str) -> KeystoneResult<Change> {
    if api.region_exists(id)? {
        return Ok(Change::Unchanged);
    }
    api.create_region(id)?;
    Ok(Change::Created)
}

pub fn ensure_service(
    api: &mut dyn KeystoneApi,
    name: &str,
    service_type: &str,
    description: &str,
) -> KeystoneResult<(CatalogService, Change)> {
    if let Some(service) = api.find_service(name, service_type)? {
        return Ok((service, Change::Unchanged));
    }
    let created = api.create_service(name, service_type, description)?;
    Ok((created, Change::Created))
}

/// The wanted URL of each interface of `service_id` in `region_id`. An endpoint whose URL differs
/// is updated in place (its id stays, so nothing that refers to it breaks); when several exist
/// for one interface and none has the URL, the first is updated and the others left alone.
pub fn ensure_endpoints(
    api: &mut dyn KeystoneApi,
    service_id: &str,
    region_id: &str,
    urls: &[(Interface, String)],
) -> KeystoneResult<Vec<(Interface, Change)>> {
    let existing = api.list_endpoints(service_id)?;
    let mut changes = Vec::with_capacity(urls.len());
    for (interface, url) in urls {
        let matching: Vec<&CatalogEndpoint> = existing
            .iter()
            .filter(|e| e.interface == *interface && e.region_id == region_id)
            .collect();
        let change = if matching.iter().any(|e| &e.url == url) {
            Change::Unchanged
        } else if let Some(first) = matching.first() {
            api.set_endpoint_url(&first.id, url)?;
            Change::Updated
        } else {
            api.create_endpoint(service_id, *interface, region_id, url)?;
            Change::Created
        };
        changes.push((*interface, change));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryKeystone;
    use super::*;

    fn pw(text: &str) -> Sensitive<String> {
        Sensitive::new(text.to_owned())
    }

    #[test]
    fn ensuring_twice_writes_once() {
        let mut api = MemoryKeystone::bootstrapped();
        let (domain, change) = ensure_domain(&mut api, "admin_domain").unwrap();
        assert_eq!(change, Change::Created);
        let writes = api.request_count().writes;
        let (again, change) = ensure_domain(&mut api, "admin_domain").unwrap();
        assert_eq!((again, change), (domain, Change::Unchanged));
        assert_eq!(api.request_count().writes, writes);
    }

    #[test]
    fn the_default_domain_is_found_by_id_and_never_created() {
        let mut api = MemoryKeystone::bootstrapped();
        let (domain, change) = ensure_domain(&mut api, "default").unwrap();
        assert_eq!((domain.id.as_str(), change), ("default", Change::Unchanged));

        let mut empty = MemoryKeystone::default();
        let err = ensure_domain(&mut empty, "default").unwrap_err();
        assert!(err.to_string().contains("bootstrap"), "{err}");
        assert_eq!(empty.request_count().writes, 0);
    }

    #[test]
    fn roles_match_whatever_the_case() {
        let mut api = MemoryKeystone::bootstrapped();
        api.create_role("Member").unwrap();
        let before = api.request_count().writes;
        let (role, change) = ensure_role(&mut api, "member").unwrap();
        assert_eq!((role.name.as_str(), change), ("Member", Change::Unchanged));
        assert_eq!(api.request_count().writes, before);
    }

    #[test]
    fn a_user_password_is_set_only_when_it_differs() {
        let mut api = MemoryKeystone::bootstrapped();
        let (user, change) = ensure_user(&mut api, "default", "admin", &pw("one"), &[]).unwrap();
        assert_eq!(change, Change::Created);
        let (_, change) = ensure_user(&mut api, "default", "admin", &pw("one"), &[]).unwrap();
        assert_eq!(change, Change::Unchanged);
        let (same, change) = ensure_user(&mut api, "default", "admin", &pw("two"), &[]).unwrap();
        assert_eq!(
            (same.id.as_str(), change),
            (user.id.as_str(), Change::Updated)
        );
        assert!(api.password_matches(&user.id, &pw("two")).unwrap());
        assert!(!api.password_matches(&user.id, &pw("one")).unwrap());
    }

    #[test]
    fn grants_are_checked_before_they_are_made() {
        let mut api = MemoryKeystone::bootstrapped();
        let (user, _) = ensure_user(&mut api, "default", "u", &pw("p"), &[]).unwrap();
        let (role, _) = ensure_role(&mut api, "service").unwrap();
        let target = GrantTarget::Domain {
            domain_id: "default".into(),
        };
        assert_eq!(
            ensure_grant(&mut api, &target, &user.id, &role.id).unwrap(),
            Change::Created
        );
        assert_eq!(
            ensure_grant(&mut api, &target, &user.id, &role.id).unwrap(),
            Change::Unchanged
        );
        let project = GrantTarget::Project {
            project_id: "nope".into(),
        };
        assert!(!api.has_role(&project, &user.id, &role.id).unwrap());
    }

    #[test]
    fn endpoints_are_created_then_updated_in_place() {
        let mut api = MemoryKeystone::bootstrapped();
        let (service, _) = ensure_service(&mut api, "keystone", "identity", "Keystone").unwrap();
        ensure_region(&mut api, "RegionOne").unwrap();
        ensure_region(&mut api, "RegionTwo").unwrap();
        let urls = |host: &str| {
            Interface::ALL
                .iter()
                .map(|i| (*i, format!("http://{host}:5000/v3")))
                .collect::<Vec<_>>()
        };
        let created = ensure_endpoints(&mut api, &service.id, "RegionOne", &urls("a")).unwrap();
        assert!(created.iter().all(|(_, c)| *c == Change::Created));
        let ids: Vec<String> = api
            .list_endpoints(&service.id)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();

        let mut moved = urls("a");
        moved[2].1 = "http://b:35357/v3".into();
        let changes = ensure_endpoints(&mut api, &service.id, "RegionOne", &moved).unwrap();
        assert_eq!(
            changes,
            vec![
                (Interface::Public, Change::Unchanged),
                (Interface::Internal, Change::Unchanged),
                (Interface::Admin, Change::Updated),
            ]
        );
        let after = api.list_endpoints(&service.id).unwrap();
        assert_eq!(
            after.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            ids,
            "updated in place"
        );
        assert!(after.iter().any(|e| e.url == "http://b:35357/v3"));

        // Another region gets its own three.
        let other = ensure_endpoints(&mut api, &service.id, "RegionTwo", &urls("a")).unwrap();
        assert!(other.iter().all(|(_, c)| *c == Change::Created));
        assert_eq!(api.list_endpoints(&service.id).unwrap().len(), 6);
    }

    #[test]
    fn errors_name_the_request_and_status() {
        let err = KeystoneError::Http {
            method: "POST",
            path: "/v3/users".into(),
            status: 409,
            message: "Conflict occurred".into(),
        };
        assert_eq!(err.status(), Some(409));
        assert!(!err.is_unauthorized());
        assert_eq!(
            err.to_string(),
            "Keystone refused POST /v3/users: HTTP 409: Conflict occurred"
        );
    }
}
