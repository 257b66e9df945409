//! An in-memory Keystone for tests: the objects the charm manages, with Keystone's rules that the
//! charm relies on (unique names per domain, 401 on a wrong password, project-scoped tokens only
//! with a role on the project, 404 for unknown ids), and the same request counting as the real
//! client.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    CatalogEndpoint, CatalogService, DEFAULT_DOMAIN_ID, Domain, DomainRef, GrantTarget, Interface,
    KeystoneApi, KeystoneError, KeystoneResult, PasswordCredentials, Project, RequestCount, Role,
    Scope, Token, User,
};
use crate::secret::Sensitive;

#[derive(Debug, Clone, Default)]
pub struct MemoryKeystone {
    pub domains: Vec<Domain>,
    pub projects: Vec<Project>,
    pub roles: Vec<Role>,
    pub users: Vec<User>,
    passwords: BTreeMap<String, Sensitive<String>>,
    /// The user options set on each user (by id).
    pub user_options: BTreeMap<String, BTreeSet<String>>,
    /// (target, user id, role id)
    pub grants: BTreeSet<(String, String, String)>,
    pub regions: BTreeSet<String>,
    pub services: Vec<CatalogService>,
    pub endpoints: Vec<CatalogEndpoint>,
    /// When set, every write fails with HTTP 503 (to test what callers do with errors).
    pub fail_writes: bool,
    /// When set, the readiness check fails (Keystone is not answering).
    pub not_answering: bool,
    next_id: u64,
    count: RequestCount,
}

fn target_key(target: &GrantTarget) -> String {
    match target {
        GrantTarget::Project { project_id } => format!("project:{project_id}"),
        GrantTarget::Domain { domain_id } => format!("domain:{domain_id}"),
    }
}

fn not_found(method: &'static str, path: String) -> KeystoneError {
    KeystoneError::Http {
        method,
        path,
        status: 404,
        message: "Could not find the object".to_owned(),
    }
}

impl MemoryKeystone {
    /// What `keystone-manage bootstrap` leaves that the charm relies on: the default domain.
    pub fn bootstrapped() -> MemoryKeystone {
        let mut keystone = MemoryKeystone::default();
        keystone.domains.push(Domain {
            id: DEFAULT_DOMAIN_ID.to_owned(),
            name: "Default".to_owned(),
        });
        keystone
    }

    fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{}", self.next_id)
    }

    fn read(&mut self) {
        self.count.total += 1;
    }

    fn write(&mut self, method: &'static str, path: &str) -> KeystoneResult<()> {
        self.count.total += 1;
        self.count.writes += 1;
        if self.fail_writes {
            return Err(KeystoneError::Http {
                method,
                path: path.to_owned(),
                status: 503,
                message: "Service Unavailable".to_owned(),
            });
        }
        Ok(())
    }

    fn conflict(method: &'static str, path: &str) -> KeystoneError {
        KeystoneError::Http {
            method,
            path: path.to_owned(),
            status: 409,
            message: "Conflict occurred attempting to store".to_owned(),
        }
    }

    fn domain_id_of(&self, domain: &DomainRef) -> Option<String> {
        match domain {
            DomainRef::Id(id) => self.domains.iter().find(|d| &d.id == id),
            DomainRef::Name(name) => self.domains.iter().find(|d| &d.name == name),
        }
        .map(|d| d.id.clone())
    }
}

/// The twin of [`super::http::HttpConnector`]: every client is this one Keystone.
impl super::KeystoneConnector for std::sync::Mutex<MemoryKeystone> {
    fn connect<'a>(
        &'a self,
        _endpoint: &super::http::LocalEndpoint,
    ) -> anyhow::Result<Box<dyn KeystoneApi + 'a>> {
        Ok(Box::new(self.lock().unwrap_or_else(|p| p.into_inner())))
    }
}

impl KeystoneApi for MemoryKeystone {
    fn version_available(&mut self) -> KeystoneResult<bool> {
        self.read();
        Ok(!self.not_answering)
    }

    fn login(&mut self, credentials: &PasswordCredentials, scope: &Scope) -> KeystoneResult<()> {
        self.authenticate(credentials, scope).map(drop)
    }

    fn authenticate(
        &mut self,
        credentials: &PasswordCredentials,
        scope: &Scope,
    ) -> KeystoneResult<Token> {
        self.read();
        let unauthorized = || KeystoneError::Http {
            method: "POST",
            path: "/v3/auth/tokens".to_owned(),
            status: 401,
            message: "The request you have made requires authentication.".to_owned(),
        };
        let domain_id = self
            .domain_id_of(&credentials.user_domain)
            .ok_or_else(unauthorized)?;
        let user = self
            .users
            .iter()
            .find(|u| u.domain_id == domain_id && u.name == credentials.user_name)
            .ok_or_else(unauthorized)?;
        if self.passwords.get(&user.id) != Some(&credentials.password) {
            return Err(unauthorized());
        }
        if let Scope::Project { name, domain } = scope {
            let domain_id = self.domain_id_of(domain).ok_or_else(unauthorized)?;
            let project = self
                .projects
                .iter()
                .find(|p| &p.name == name && p.domain_id == domain_id)
                .ok_or_else(unauthorized)?;
            let target = format!("project:{}", project.id);
            if !self
                .grants
                .iter()
                .any(|(t, u, _)| *t == target && *u == user.id)
            {
                return Err(unauthorized());
            }
        }
        Ok(Token {
            id: Sensitive::new(format!("token-for-{}", user.id)),
            user_id: user.id.clone(),
        })
    }

    fn domain_by_id(&mut self, id: &str) -> KeystoneResult<Option<Domain>> {
        self.read();
        Ok(self.domains.iter().find(|d| d.id == id).cloned())
    }

    fn find_domain(&mut self, name: &str) -> KeystoneResult<Option<Domain>> {
        self.read();
        Ok(self.domains.iter().find(|d| d.name == name).cloned())
    }

    fn create_domain(&mut self, name: &str, _description: &str) -> KeystoneResult<Domain> {
        self.write("POST", "/v3/domains")?;
        if self.domains.iter().any(|d| d.name == name) {
            return Err(Self::conflict("POST", "/v3/domains"));
        }
        let domain = Domain {
            id: self.id("domain"),
            name: name.to_owned(),
        };
        self.domains.push(domain.clone());
        Ok(domain)
    }

    fn find_project(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<Project>> {
        self.read();
        Ok(self
            .projects
            .iter()
            .find(|p| p.domain_id == domain_id && p.name == name)
            .cloned())
    }

    fn create_project(
        &mut self,
        domain_id: &str,
        name: &str,
        _description: &str,
    ) -> KeystoneResult<Project> {
        self.write("POST", "/v3/projects")?;
        if !self.domains.iter().any(|d| d.id == domain_id) {
            return Err(not_found("POST", "/v3/projects".to_owned()));
        }
        if self
            .projects
            .iter()
            .any(|p| p.domain_id == domain_id && p.name == name)
        {
            return Err(Self::conflict("POST", "/v3/projects"));
        }
        let project = Project {
            id: self.id("project"),
            name: name.to_owned(),
            domain_id: domain_id.to_owned(),
        };
        self.projects.push(project.clone());
        Ok(project)
    }

    fn list_roles(&mut self) -> KeystoneResult<Vec<Role>> {
        self.read();
        Ok(self.roles.clone())
    }

    fn create_role(&mut self, name: &str) -> KeystoneResult<Role> {
        self.write("POST", "/v3/roles")?;
        if self.roles.iter().any(|r| r.name.eq_ignore_ascii_case(name)) {
            return Err(Self::conflict("POST", "/v3/roles"));
        }
        let role = Role {
            id: self.id("role"),
            name: name.to_owned(),
        };
        self.roles.push(role.clone());
        Ok(role)
    }

    fn find_user(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<User>> {
        self.read();
        Ok(self
            .users
            .iter()
            .find(|u| u.domain_id == domain_id && u.name == name)
            .cloned())
    }

    fn create_user(
        &mut self,
        domain_id: &str,
        name: &str,
        password: &Sensitive<String>,
        options: &[&str],
    ) -> KeystoneResult<User> {
        self.write("POST", "/v3/users")?;
        if self
            .users
            .iter()
            .any(|u| u.domain_id == domain_id && u.name == name)
        {
            return Err(Self::conflict("POST", "/v3/users"));
        }
        let user = User {
            id: self.id("user"),
            name: name.to_owned(),
            domain_id: domain_id.to_owned(),
        };
        self.passwords.insert(user.id.clone(), password.clone());
        self.user_options.insert(
            user.id.clone(),
            options.iter().map(|o| (*o).to_owned()).collect(),
        );
        self.users.push(user.clone());
        Ok(user)
    }

    fn set_password(&mut self, user_id: &str, password: &Sensitive<String>) -> KeystoneResult<()> {
        let path = format!("/v3/users/{user_id}");
        self.write("PATCH", &path)?;
        if !self.users.iter().any(|u| u.id == user_id) {
            return Err(not_found("PATCH", path));
        }
        self.passwords.insert(user_id.to_owned(), password.clone());
        Ok(())
    }

    fn password_matches(
        &mut self,
        user_id: &str,
        password: &Sensitive<String>,
    ) -> KeystoneResult<bool> {
        self.read();
        Ok(self.passwords.get(user_id) == Some(password))
    }

    fn has_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<bool> {
        self.read();
        Ok(self
            .grants
            .contains(&(target_key(target), user_id.to_owned(), role_id.to_owned())))
    }

    fn grant_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<()> {
        let path = format!("{}/users/{user_id}/roles/{role_id}", target_key(target));
        self.write("PUT", &path)?;
        let target_exists = match target {
            GrantTarget::Project { project_id } => {
                self.projects.iter().any(|p| &p.id == project_id)
            }
            GrantTarget::Domain { domain_id } => self.domains.iter().any(|d| &d.id == domain_id),
        };
        if !target_exists
            || !self.users.iter().any(|u| u.id == user_id)
            || !self.roles.iter().any(|r| r.id == role_id)
        {
            return Err(not_found("PUT", path));
        }
        self.grants
            .insert((target_key(target), user_id.to_owned(), role_id.to_owned()));
        Ok(())
    }

    fn region_exists(&mut self, id: &str) -> KeystoneResult<bool> {
        self.read();
        Ok(self.regions.contains(id))
    }

    fn create_region(&mut self, id: &str) -> KeystoneResult<()> {
        self.write("POST", "/v3/regions")?;
        if !self.regions.insert(id.to_owned()) {
            return Err(Self::conflict("POST", "/v3/regions"));
        }
        Ok(())
    }

    fn find_service(
        &mut self,
        name: &str,
        service_type: &str,
    ) -> KeystoneResult<Option<CatalogService>> {
        self.read();
        Ok(self
            .services
            .iter()
            .find(|s| s.name == name && s.service_type == service_type)
            .cloned())
    }

    fn create_service(
        &mut self,
        name: &str,
        service_type: &str,
        _description: &str,
    ) -> KeystoneResult<CatalogService> {
        self.write("POST", "/v3/services")?;
        let service = CatalogService {
            id: self.id("service"),
            name: name.to_owned(),
            service_type: service_type.to_owned(),
        };
        self.services.push(service.clone());
        Ok(service)
    }

    fn list_endpoints(&mut self, service_id: &str) -> KeystoneResult<Vec<CatalogEndpoint>> {
        self.read();
        Ok(self
            .endpoints
            .iter()
            .filter(|e| e.service_id == service_id)
            .cloned()
            .collect())
    }

    fn create_endpoint(
        &mut self,
        service_id: &str,
        interface: Interface,
        region_id: &str,
        url: &str,
    ) -> KeystoneResult<CatalogEndpoint> {
        self.write("POST", "/v3/endpoints")?;
        if !self.regions.contains(region_id) || !self.services.iter().any(|s| s.id == service_id) {
            return Err(not_found("POST", "/v3/endpoints".to_owned()));
        }
        let endpoint = CatalogEndpoint {
            id: self.id("endpoint"),
            service_id: service_id.to_owned(),
            interface,
            region_id: region_id.to_owned(),
            url: url.to_owned(),
        };
        self.endpoints.push(endpoint.clone());
        Ok(endpoint)
    }

    fn set_endpoint_url(&mut self, endpoint_id: &str, url: &str) -> KeystoneResult<()> {
        let path = format!("/v3/endpoints/{endpoint_id}");
        self.write("PATCH", &path)?;
        match self.endpoints.iter_mut().find(|e| e.id == endpoint_id) {
            Some(endpoint) => {
                endpoint.url = url.to_owned();
                Ok(())
            }
            None => Err(not_found("PATCH", path)),
        }
    }

    fn request_count(&self) -> RequestCount {
        self.count
    }
}
