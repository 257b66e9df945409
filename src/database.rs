//! The database the shared-db relation gives this unit, as data: what keystone.conf's
//! connection and the TLS files are made from. The relation itself (asking, reading, checking
//! what the database charm sent) is [`crate::relations::shared_db`].

use crate::host::fs::DesiredFile;
use crate::secret::Sensitive;

/// What is wrong with the relation's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedDbError {
    /// A remote value that cannot be used safely. The value itself is never included.
    #[error("shared-db: {unit} sent an unusable {key} ({reason}); fix the database charm's data")]
    InvalidValue {
        unit: String,
        key: &'static str,
        reason: String,
    },
    /// What this unit would request is unusable (config `database` / `database-user`).
    #[error("shared-db: config {option} {reason}")]
    InvalidRequest {
        option: &'static str,
        reason: String,
    },
    #[error(
        "shared-db: this unit has no address on the shared-db binding to send as hostname; bind shared-db to a space this machine is in"
    )]
    NoAddress,
}

/// The database as this unit sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseState {
    /// No shared-db relation.
    Missing,
    /// Related, but no unit has sent `db_host` and `password` (and `allowed_units`) yet.
    Incomplete,
    /// The database answered, but no unit's `allowed_units` names this unit (yet).
    NotAllowed,
    Ready(Database),
}

/// A database this unit may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub host: String,
    pub port: Option<u16>,
    pub name: String,
    pub user: String,
    pub password: Sensitive<String>,
    pub tls: Option<DatabaseTls>,
}

impl Database {
    /// What keystone.conf's `[database]` connection is built from; [`crate::render`] builds the
    /// URL, in one place, encoded the way alembic and oslo.config read it.
    pub fn connection(&self) -> crate::render::DatabaseConnection {
        crate::render::DatabaseConnection {
            user: self.user.clone(),
            password: self.password.clone(),
            host: self.host.clone(),
            port: self.port,
            database: self.name.clone(),
            tls: self.tls.as_ref().map(|tls| crate::render::DatabaseTls {
                ca_file: crate::paths::DB_CLIENT_CA.to_owned(),
                cert_file: tls
                    .client
                    .as_ref()
                    .map(|_| crate::paths::DB_CLIENT_CERT.to_owned()),
                key_file: tls
                    .client
                    .as_ref()
                    .map(|_| crate::paths::DB_CLIENT_KEY.to_owned()),
            }),
        }
    }

    /// The files the connection names: the database's TLS material, readable by Keystone.
    pub fn files(&self) -> Vec<DesiredFile> {
        let Some(tls) = &self.tls else {
            return Vec::new();
        };
        let mut files = vec![DesiredFile::keystone_readable(
            crate::paths::DB_CLIENT_CA,
            tls.ca_pem.clone(),
        )];
        if let Some((cert, key)) = &tls.client {
            files.push(DesiredFile::keystone_readable(
                crate::paths::DB_CLIENT_CERT,
                cert.clone(),
            ));
            files.push(DesiredFile::keystone_readable(
                crate::paths::DB_CLIENT_KEY,
                key.expose().clone(),
            ));
        }
        files
    }

    /// The SQLAlchemy URL (see [`crate::render::DatabaseConnection::url`]).
    pub fn connection_url(&self) -> Result<Sensitive<String>, crate::render::RenderError> {
        self.connection().url()
    }
}

/// TLS material for the database connection, decoded to PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTls {
    /// Written to [`crate::paths::DB_CLIENT_CA`].
    pub ca_pem: String,
    /// Client certificate and key, written to [`crate::paths::DB_CLIENT_CERT`] and
    /// [`crate::paths::DB_CLIENT_KEY`].
    pub client: Option<(String, Sensitive<String>)>,
}
