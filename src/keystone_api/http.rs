//! The real Keystone client: the only code in the charm that speaks HTTP.
//!
//! It talks to the Keystone on this unit over loopback (so it works before any load balancer or
//! DNS name does), never through a proxy from the environment (a unit's `http_proxy` is for the
//! Internet, and a proxy must never see the admin password), with explicit timeouts so a hung
//! Keystone fails the hook instead of hanging it.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};
use ureq::Agent;
use ureq::http::Response;

use super::{
    CatalogEndpoint, CatalogService, Domain, DomainRef, GrantTarget, Interface, KeystoneApi,
    KeystoneError, KeystoneResult, PasswordCredentials, Project, RequestCount, Role, Scope, Token,
    User,
};
use crate::secret::Sensitive;

/// Characters left as they are in a path segment (RFC 3986 unreserved); everything else is
/// percent-encoded, so a region or id can never add a path segment or a query.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The Keystone API on this unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// The port Apache serves Keystone's API on, behind haproxy (service-port less 10), in
    /// plain HTTP on loopback whether or not haproxy serves TLS in front: the charm asks its own
    /// unit's Keystone, whatever haproxy does.
    pub port: u16,
    /// Empty, or `/segment[/segment...]` (service-path-prefix, already validated by the config).
    pub path_prefix: String,
}

impl LocalEndpoint {
    /// `http://127.0.0.1:<port><prefix>`: the base every API path is appended to.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path_prefix)
    }
}

/// How long to wait for Keystone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the TCP (and TLS) connection; loopback answers at once or not at all.
    pub connect: Duration,
    /// For the response headers, and again for the body. Keystone's first request after a start
    /// loads the application (several seconds), so this is generous.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
        }
    }
}

/// Connects over loopback with [`HttpKeystone`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpConnector {
    pub timeouts: Timeouts,
}

impl super::KeystoneConnector for HttpConnector {
    fn connect<'a>(
        &'a self,
        endpoint: &LocalEndpoint,
    ) -> anyhow::Result<Box<dyn KeystoneApi + 'a>> {
        Ok(Box::new(HttpKeystone::new(endpoint, self.timeouts)?))
    }
}

/// A Keystone v3 client holding one token (see [`HttpKeystone::login`]).
pub struct HttpKeystone {
    agent: Agent,
    base_url: String,
    token: Option<Sensitive<String>>,
    count: RequestCount,
}

/// What Keystone answered, whatever the status.
struct Reply {
    status: u16,
    subject_token: Option<String>,
    body: String,
}

enum Body<'a> {
    None,
    Json(&'a Value),
}

impl HttpKeystone {
    pub fn new(endpoint: &LocalEndpoint, timeouts: Timeouts) -> KeystoneResult<HttpKeystone> {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_connect(Some(timeouts.connect))
            .timeout_send_request(Some(timeouts.read))
            .timeout_send_body(Some(timeouts.read))
            .timeout_recv_response(Some(timeouts.read))
            .timeout_recv_body(Some(timeouts.read))
            .user_agent("keystone-charm");
        Ok(HttpKeystone {
            agent: Agent::new_with_config(config.build()),
            base_url: endpoint.base_url(),
            token: None,
            count: RequestCount::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn send(
        &mut self,
        method: &'static str,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
        authenticated: bool,
    ) -> KeystoneResult<Reply> {
        let url = format!("{}{path}", self.base_url);
        let token = if authenticated {
            match &self.token {
                Some(token) => Some(token.expose().clone()),
                None => {
                    return Err(KeystoneError::Setup(format!(
                        "{method} {path} needs a token: log in first"
                    )));
                }
            }
        } else {
            None
        };
        self.count.total += 1;
        if matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") && path != "/v3/auth/tokens" {
            self.count.writes += 1;
        }
        let unreachable = |err: ureq::Error| KeystoneError::Unreachable {
            url: url.clone(),
            method,
            path: path.to_owned(),
            reason: err.to_string(),
        };
        let payload = match body {
            Body::None => None,
            Body::Json(value) => Some(value.to_string()),
        };
        let response: Response<ureq::Body> = match method {
            "GET" | "HEAD" => {
                let mut request = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.head(&url)
                };
                for (key, value) in query {
                    request = request.query(*key, *value);
                }
                if let Some(token) = &token {
                    request = request.header("X-Auth-Token", token);
                }
                request.header("Accept", "application/json").call()
            }
            _ => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                if let Some(token) = &token {
                    request = request.header("X-Auth-Token", token);
                }
                let request = request.header("Accept", "application/json");
                match payload {
                    Some(text) => request.content_type("application/json").send(text),
                    None => request.send_empty(),
                }
            }
        }
        .map_err(unreachable)?;
        let status = response.status().as_u16();
        let subject_token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = if method == "HEAD" || status == 204 {
            String::new()
        } else {
            response.into_body().read_to_string().map_err(unreachable)?
        };
        Ok(Reply {
            status,
            subject_token,
            body,
        })
    }

    /// A request whose only acceptable answers are 2xx; `password` is what to scrub from errors.
    fn expect_success(
        &mut self,
        method: &'static str,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
        password: Option<&Sensitive<String>>,
    ) -> KeystoneResult<Reply> {
        let reply = self.send(method, path, query, body, true)?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(http_error(method, path, &reply, password))
        }
    }

    /// A lookup: `None` on 404.
    fn get_optional<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        query: &[(&str, &str)],
    ) -> KeystoneResult<Option<T>> {
        let reply = self.send("GET", path, query, Body::None, true)?;
        match reply.status {
            404 => Ok(None),
            200 => parse("GET", path, &reply.body).map(Some),
            _ => Err(http_error("GET", path, &reply, None)),
        }
    }

    fn get<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        query: &[(&str, &str)],
    ) -> KeystoneResult<T> {
        let reply = self.expect_success("GET", path, query, Body::None, None)?;
        parse("GET", path, &reply.body)
    }

    fn create<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        body: &Value,
        password: Option<&Sensitive<String>>,
    ) -> KeystoneResult<T> {
        let reply = self.expect_success("POST", path, &[], Body::Json(body), password)?;
        parse("POST", path, &reply.body)
    }

    fn auth_body(credentials: &PasswordCredentials, scope: &Scope) -> Value {
        let user = json!({
            "name": credentials.user_name,
            "domain": domain_ref(&credentials.user_domain),
            "password": credentials.password.expose(),
        });
        let mut auth = json!({
            "identity": {"methods": ["password"], "password": {"user": user}},
        });
        let scope = match scope {
            Scope::Unscoped => None,
            Scope::System => Some(json!({"system": {"all": true}})),
            Scope::Project { name, domain } => Some(json!({
                "project": {"name": name, "domain": domain_ref(domain)}
            })),
        };
        if let (Some(scope), Some(object)) = (scope, auth.as_object_mut()) {
            object.insert("scope".to_owned(), scope);
        }
        json!({ "auth": auth })
    }

    fn grant_path(target: &GrantTarget, user_id: &str, role_id: &str) -> String {
        let (kind, id) = match target {
            GrantTarget::Project { project_id } => ("projects", project_id),
            GrantTarget::Domain { domain_id } => ("domains", domain_id),
        };
        format!(
            "/v3/{kind}/{}/users/{}/roles/{}",
            segment(id),
            segment(user_id),
            segment(role_id)
        )
    }
}

fn segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}

fn domain_ref(domain: &DomainRef) -> Value {
    match domain {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(
    method: &'static str,
    path: &str,
    body: &str,
) -> KeystoneResult<T> {
    serde_json::from_str(body).map_err(|err| KeystoneError::BadResponse {
        method,
        path: path.to_owned(),
        reason: err.to_string(),
    })
}

/// Keystone's error message (`{"error": {"message": ...}}`), or the start of the body, with any
/// password the request carried replaced by `***`.
fn http_error(
    method: &'static str,
    path: &str,
    reply: &Reply,
    password: Option<&Sensitive<String>>,
) -> KeystoneError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorDetail,
    }
    #[derive(Deserialize)]
    struct ErrorDetail {
        message: String,
    }
    let mut message = match serde_json::from_str::<ErrorBody>(&reply.body) {
        Ok(parsed) => parsed.error.message,
        // Apache's error page when Keystone failed: its title, and where the reason is.
        Err(_) if reply.body.trim_start().starts_with('<') => {
            let title = reply
                .body
                .split_once("<title>")
                .and_then(|(_, rest)| rest.split_once("</title>"))
                .map_or("an HTML page", |(title, _)| title.trim());
            if reply.status >= 500 {
                format!("{title}; /var/log/keystone/keystone.log on this unit says why")
            } else {
                title.to_owned()
            }
        }
        Err(_) => reply.body.chars().take(200).collect(),
    };
    if let Some(password) = password.filter(|p| !p.expose().is_empty()) {
        message = message.replace(password.expose().as_str(), "***");
    }
    KeystoneError::Http {
        method,
        path: path.to_owned(),
        status: reply.status,
        message: message.trim().to_owned(),
    }
}

#[derive(Deserialize)]
struct IdName {
    id: String,
    name: String,
    #[serde(default)]
    domain_id: Option<String>,
}

#[derive(Deserialize)]
struct DomainReply {
    domain: IdName,
}
#[derive(Deserialize)]
struct DomainsReply {
    domains: Vec<IdName>,
}
#[derive(Deserialize)]
struct ProjectReply {
    project: IdName,
}
#[derive(Deserialize)]
struct ProjectsReply {
    projects: Vec<IdName>,
}
#[derive(Deserialize)]
struct RoleReply {
    role: IdName,
}
#[derive(Deserialize)]
struct RolesReply {
    roles: Vec<IdName>,
}
#[derive(Deserialize)]
struct UserReply {
    user: IdName,
}
#[derive(Deserialize)]
struct UsersReply {
    users: Vec<IdName>,
}
#[derive(Deserialize)]
struct ServiceBody {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    service_type: String,
}
#[derive(Deserialize)]
struct ServiceReply {
    service: ServiceBody,
}
#[derive(Deserialize)]
struct ServicesReply {
    services: Vec<ServiceBody>,
}
#[derive(Deserialize)]
struct EndpointBody {
    id: String,
    service_id: String,
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}
#[derive(Deserialize)]
struct EndpointReply {
    endpoint: EndpointBody,
}
#[derive(Deserialize)]
struct EndpointsReply {
    endpoints: Vec<EndpointBody>,
}
#[derive(Deserialize)]
struct TokenReply {
    token: TokenBody,
}
#[derive(Deserialize)]
struct TokenBody {
    user: TokenUser,
}
#[derive(Deserialize)]
struct TokenUser {
    id: String,
}

fn project(reply: IdName) -> Project {
    Project {
        id: reply.id,
        name: reply.name,
        domain_id: reply.domain_id.unwrap_or_default(),
    }
}

fn user(reply: IdName) -> User {
    User {
        id: reply.id,
        name: reply.name,
        domain_id: reply.domain_id.unwrap_or_default(),
    }
}

fn service(reply: ServiceBody) -> CatalogService {
    CatalogService {
        id: reply.id,
        name: reply.name,
        service_type: reply.service_type,
    }
}

fn endpoint(reply: EndpointBody) -> Option<CatalogEndpoint> {
    Some(CatalogEndpoint {
        interface: Interface::parse(&reply.interface)?,
        id: reply.id,
        service_id: reply.service_id,
        region_id: reply.region_id.unwrap_or_default(),
        url: reply.url,
    })
}

impl KeystoneApi for HttpKeystone {
    /// Authenticates and keeps the token for every later request of this client.
    fn login(&mut self, credentials: &PasswordCredentials, scope: &Scope) -> KeystoneResult<()> {
        let token = self.authenticate(credentials, scope)?;
        self.token = Some(token.id);
        Ok(())
    }

    /// `GET <prefix>/v3` answered 200: Keystone on this unit serves its API (the readiness check).
    fn version_available(&mut self) -> KeystoneResult<bool> {
        let reply = self.send("GET", "/v3", &[], Body::None, false)?;
        Ok(reply.status == 200)
    }

    fn authenticate(
        &mut self,
        credentials: &PasswordCredentials,
        scope: &Scope,
    ) -> KeystoneResult<Token> {
        const PATH: &str = "/v3/auth/tokens";
        let body = Self::auth_body(credentials, scope);
        let reply = self.send("POST", PATH, &[], Body::Json(&body), false)?;
        if reply.status != 201 {
            return Err(http_error(
                "POST",
                PATH,
                &reply,
                Some(&credentials.password),
            ));
        }
        let parsed: TokenReply = parse("POST", PATH, &reply.body)?;
        let id = reply
            .subject_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| KeystoneError::BadResponse {
                method: "POST",
                path: PATH.to_owned(),
                reason: "no X-Subject-Token header".to_owned(),
            })?;
        Ok(Token {
            id: Sensitive::new(id),
            user_id: parsed.token.user.id,
        })
    }

    fn domain_by_id(&mut self, id: &str) -> KeystoneResult<Option<Domain>> {
        let path = format!("/v3/domains/{}", segment(id));
        Ok(self
            .get_optional::<DomainReply>(&path, &[])?
            .map(|reply| Domain {
                id: reply.domain.id,
                name: reply.domain.name,
            }))
    }

    fn find_domain(&mut self, name: &str) -> KeystoneResult<Option<Domain>> {
        let reply: DomainsReply = self.get("/v3/domains", &[("name", name)])?;
        Ok(reply
            .domains
            .into_iter()
            .find(|d| d.name == name)
            .map(|d| Domain {
                id: d.id,
                name: d.name,
            }))
    }

    fn create_domain(&mut self, name: &str, description: &str) -> KeystoneResult<Domain> {
        let body = json!({"domain": {"name": name, "description": description, "enabled": true}});
        let reply: DomainReply = self.create("/v3/domains", &body, None)?;
        Ok(Domain {
            id: reply.domain.id,
            name: reply.domain.name,
        })
    }

    fn find_project(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<Project>> {
        let reply: ProjectsReply =
            self.get("/v3/projects", &[("name", name), ("domain_id", domain_id)])?;
        Ok(reply
            .projects
            .into_iter()
            .map(project)
            .find(|p| p.name == name && p.domain_id == domain_id))
    }

    fn create_project(
        &mut self,
        domain_id: &str,
        name: &str,
        description: &str,
    ) -> KeystoneResult<Project> {
        let body = json!({"project": {
            "name": name, "domain_id": domain_id, "description": description, "enabled": true
        }});
        let reply: ProjectReply = self.create("/v3/projects", &body, None)?;
        Ok(project(reply.project))
    }

    fn list_roles(&mut self) -> KeystoneResult<Vec<Role>> {
        let reply: RolesReply = self.get("/v3/roles", &[])?;
        Ok(reply
            .roles
            .into_iter()
            .filter(|r| r.domain_id.is_none())
            .map(|r| Role {
                id: r.id,
                name: r.name,
            })
            .collect())
    }

    fn create_role(&mut self, name: &str) -> KeystoneResult<Role> {
        let body = json!({"role": {"name": name}});
        let reply: RoleReply = self.create("/v3/roles", &body, None)?;
        Ok(Role {
            id: reply.role.id,
            name: reply.role.name,
        })
    }

    fn find_user(&mut self, domain_id: &str, name: &str) -> KeystoneResult<Option<User>> {
        let reply: UsersReply =
            self.get("/v3/users", &[("name", name), ("domain_id", domain_id)])?;
        Ok(reply
            .users
            .into_iter()
            .map(user)
            .find(|u| u.name == name && u.domain_id == domain_id))
    }

    fn create_user(
        &mut self,
        domain_id: &str,
        name: &str,
        password: &Sensitive<String>,
        options: &[&str],
    ) -> KeystoneResult<User> {
        let options: serde_json::Map<String, Value> = options
            .iter()
            .map(|o| ((*o).to_owned(), Value::Bool(true)))
            .collect();
        let body = json!({"user": {
            "name": name, "domain_id": domain_id, "password": password.expose(), "enabled": true,
            "options": options
        }});
        let reply: UserReply = self.create("/v3/users", &body, Some(password))?;
        Ok(user(reply.user))
    }

    fn set_password(&mut self, user_id: &str, password: &Sensitive<String>) -> KeystoneResult<()> {
        let path = format!("/v3/users/{}", segment(user_id));
        let body = json!({"user": {"password": password.expose()}});
        self.expect_success("PATCH", &path, &[], Body::Json(&body), Some(password))?;
        Ok(())
    }

    fn password_matches(
        &mut self,
        user_id: &str,
        password: &Sensitive<String>,
    ) -> KeystoneResult<bool> {
        const PATH: &str = "/v3/auth/tokens";
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": user_id, "password": password.expose()}
        }}}});
        let reply = self.send("POST", PATH, &[], Body::Json(&body), false)?;
        match reply.status {
            201 => Ok(true),
            401 => Ok(false),
            _ => Err(http_error("POST", PATH, &reply, Some(password))),
        }
    }

    fn has_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<bool> {
        // The assignments listed, not `HEAD` on the grant: Keystone logs a traceback at ERROR
        // for every grant `HEAD` does not find, which a deploy would fill keystone.log with.
        let scope = match target {
            GrantTarget::Project { project_id } => ("scope.project.id", project_id.as_str()),
            GrantTarget::Domain { domain_id } => ("scope.domain.id", domain_id.as_str()),
        };
        #[derive(Deserialize)]
        struct Assignments {
            role_assignments: Vec<Value>,
        }
        let found: Assignments = self.get(
            "/v3/role_assignments",
            &[("user.id", user_id), ("role.id", role_id), scope],
        )?;
        Ok(!found.role_assignments.is_empty())
    }

    fn grant_role(
        &mut self,
        target: &GrantTarget,
        user_id: &str,
        role_id: &str,
    ) -> KeystoneResult<()> {
        let path = Self::grant_path(target, user_id, role_id);
        self.expect_success("PUT", &path, &[], Body::None, None)?;
        Ok(())
    }

    fn region_exists(&mut self, id: &str) -> KeystoneResult<bool> {
        let path = format!("/v3/regions/{}", segment(id));
        Ok(self.get_optional::<Value>(&path, &[])?.is_some())
    }

    fn create_region(&mut self, id: &str) -> KeystoneResult<()> {
        let body = json!({"region": {"id": id}});
        self.create::<Value>("/v3/regions", &body, None)?;
        Ok(())
    }

    fn find_service(
        &mut self,
        name: &str,
        service_type: &str,
    ) -> KeystoneResult<Option<CatalogService>> {
        let reply: ServicesReply = self.get("/v3/services", &[("type", service_type)])?;
        Ok(reply
            .services
            .into_iter()
            .map(service)
            .find(|s| s.name == name && s.service_type == service_type))
    }

    fn create_service(
        &mut self,
        name: &str,
        service_type: &str,
        description: &str,
    ) -> KeystoneResult<CatalogService> {
        let body = json!({"service": {
            "name": name, "type": service_type, "description": description, "enabled": true
        }});
        let reply: ServiceReply = self.create("/v3/services", &body, None)?;
        Ok(service(reply.service))
    }

    fn list_endpoints(&mut self, service_id: &str) -> KeystoneResult<Vec<CatalogEndpoint>> {
        let reply: EndpointsReply = self.get("/v3/endpoints", &[("service_id", service_id)])?;
        // Interfaces Keystone may hold but the charm does not manage are left out.
        Ok(reply
            .endpoints
            .into_iter()
            .filter(|e| e.service_id == service_id)
            .filter_map(endpoint)
            .collect())
    }

    fn create_endpoint(
        &mut self,
        service_id: &str,
        interface: Interface,
        region_id: &str,
        url: &str,
    ) -> KeystoneResult<CatalogEndpoint> {
        let body = json!({"endpoint": {
            "service_id": service_id, "interface": interface.as_str(),
            "region_id": region_id, "url": url, "enabled": true
        }});
        let reply: EndpointReply = self.create("/v3/endpoints", &body, None)?;
        endpoint(reply.endpoint).ok_or_else(|| KeystoneError::BadResponse {
            method: "POST",
            path: "/v3/endpoints".to_owned(),
            reason: "the created endpoint has an unknown interface".to_owned(),
        })
    }

    fn set_endpoint_url(&mut self, endpoint_id: &str, url: &str) -> KeystoneResult<()> {
        let path = format!("/v3/endpoints/{}", segment(endpoint_id));
        let body = json!({"endpoint": {"url": url}});
        self.expect_success("PATCH", &path, &[], Body::Json(&body), None)?;
        Ok(())
    }

    fn request_count(&self) -> RequestCount {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_is_loopback_with_the_prefix() {
        let mut endpoint = LocalEndpoint {
            port: 4990,
            path_prefix: String::new(),
        };
        assert_eq!(endpoint.base_url(), "http://127.0.0.1:4990");
        endpoint.path_prefix = "/api/idm".into();
        assert_eq!(endpoint.base_url(), "http://127.0.0.1:4990/api/idm");
    }

    #[test]
    fn path_segments_cannot_add_segments_or_queries() {
        assert_eq!(
            segment("Region One/../x?y#z"),
            "Region%20One%2F..%2Fx%3Fy%23z"
        );
        assert_eq!(segment("default"), "default");
    }

    #[test]
    fn an_error_page_is_told_by_its_title_and_where_the_reason_is() {
        let reply = Reply {
            status: 500,
            subject_token: None,
            body: "<!DOCTYPE HTML>\n<html><head>\n<title>500 Internal Server Error</title>\n</head><body>The server ...</body></html>".into(),
        };
        assert_eq!(
            http_error("POST", "/v3/auth/tokens", &reply, None).to_string(),
            "Keystone refused POST /v3/auth/tokens: HTTP 500: 500 Internal Server Error; /var/log/keystone/keystone.log on this unit says why"
        );
    }

    #[test]
    fn error_messages_never_carry_the_password() {
        let reply = Reply {
            status: 400,
            subject_token: None,
            body: r#"{"error": {"code": 400, "message": "Invalid input: 'hunter2' is too short", "title": "Bad Request"}}"#.into(),
        };
        let password = Sensitive::new("hunter2".to_owned());
        let err = http_error("PATCH", "/v3/users/u1", &reply, Some(&password));
        assert_eq!(
            err.to_string(),
            "Keystone refused PATCH /v3/users/u1: HTTP 400: Invalid input: '***' is too short"
        );
    }

    #[test]
    fn a_request_without_a_token_is_refused_before_it_is_sent() {
        let endpoint = LocalEndpoint {
            port: 9,
            path_prefix: String::new(),
        };
        let mut client = HttpKeystone::new(&endpoint, Timeouts::default()).unwrap();
        let err = client.find_domain("admin_domain").unwrap_err();
        assert!(matches!(err, KeystoneError::Setup(_)), "{err}");
        assert_eq!(client.request_count(), RequestCount::default());
    }

    #[test]
    fn nothing_listening_is_unreachable_with_the_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is dropped: nothing answers on that port now.
        let endpoint = LocalEndpoint {
            port,
            path_prefix: "/api/idm".into(),
        };
        let mut client = HttpKeystone::new(&endpoint, Timeouts::default()).unwrap();
        let err = client.version_available().unwrap_err();
        assert!(
            matches!(&err, KeystoneError::Unreachable { url, .. } if url == &format!("http://127.0.0.1:{port}/api/idm/v3")),
            "{err}"
        );
    }
}
