//! An OpenLDAP directory of a test's own (Debian's slapd, an mdb database in a directory of the
//! test's): users in `ou=users`, groups in `ou=groups`, as an LDAP-backed Keystone domain reads
//! them. The test can stop it and start it again. Needs root, slapd and ldap-utils.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// How long the server has to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const USERS_DN: &str = "ou=users,dc=example,dc=com";
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=com";

/// A running (or stopped) slapd; stopped and removed on drop.
pub struct Slapd {
    dir: PathBuf,
    address: String,
    port: u16,
    admin_password: String,
    server: Option<Child>,
}

impl Slapd {
    /// Writes a configuration under `dir` and starts slapd on a free port of `address`, with the
    /// base entries (the suffix, `ou=users`, `ou=groups`).
    pub fn start(dir: &Path, address: &str, admin_password: &str) -> Result<Slapd> {
        let port = std::net::TcpListener::bind((address, 0))
            .and_then(|listener| listener.local_addr())
            .with_context(|| format!("no free port on {address}"))?
            .port();
        let db = dir.join("db");
        std::fs::create_dir_all(&db).with_context(|| format!("cannot create {}", db.display()))?;
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {dir}/slapd.pid\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {admin_password}\n\
             directory {db}\n",
            dir = dir.display(),
            db = db.display(),
        );
        std::fs::write(dir.join("slapd.conf"), config).context("cannot write slapd.conf")?;
        let mut slapd = Slapd {
            dir: dir.to_path_buf(),
            address: address.to_owned(),
            port,
            admin_password: admin_password.to_owned(),
            server: None,
        };
        slapd.resume()?;
        slapd.add(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n\
             dc: example\n\n\
             dn: {USERS_DN}\nobjectClass: organizationalUnit\nou: users\n\n\
             dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n"
        ))?;
        Ok(slapd)
    }

    /// `ldap://<address>:<port>`.
    pub fn url(&self) -> String {
        format!("ldap://{}:{}", self.address, self.port)
    }

    /// Adds a user `name` with `password`.
    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        self.add(&format!(
            "dn: cn={name},{USERS_DN}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\n\
             uid: {name}\nuserPassword: {password}\n"
        ))
    }

    /// Adds a group `name` whose members are the users `members`.
    pub fn add_group(&self, name: &str, members: &[&str]) -> Result<()> {
        let members: String = members
            .iter()
            .map(|m| format!("member: cn={m},{USERS_DN}\n"))
            .collect();
        self.add(&format!(
            "dn: cn={name},{GROUPS_DN}\nobjectClass: groupOfNames\ncn: {name}\n{members}"
        ))
    }

    /// The domain configuration keystone-ldap renders for this directory (its template's
    /// options), as `/etc/keystone/domains/keystone.<domain>.conf`.
    pub fn domain_config(&self) -> String {
        format!(
            "[ldap]\nurl = {url}\nuser = {ADMIN_DN}\npassword = {password}\nsuffix = {SUFFIX}\n\n\
             user_allow_create = False\nuser_allow_update = False\nuser_allow_delete = False\n\n\
             group_allow_create = False\ngroup_allow_update = False\ngroup_allow_delete = False\n\n\
             query_scope = sub\n\
             user_tree_dn = {USERS_DN}\nuser_objectclass = inetOrgPerson\n\
             user_id_attribute = cn\nuser_name_attribute = cn\n\
             group_tree_dn = {GROUPS_DN}\ngroup_objectclass = groupOfNames\n\
             group_id_attribute = cn\ngroup_name_attribute = cn\n\
             group_member_attribute = member\n\n\
             [identity]\ndriver = ldap\n",
            url = self.url(),
            password = self.admin_password,
        )
    }

    fn add(&self, ldif: &str) -> Result<()> {
        use std::io::Write as _;
        let mut child = Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                &self.admin_password,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run ldapadd (apt-get install ldap-utils)")?;
        child
            .stdin
            .take()
            .context("ldapadd's input")?
            .write_all(ldif.as_bytes())
            .context("cannot give ldapadd its entries")?;
        let output = child
            .wait_with_output()
            .context("cannot wait for ldapadd")?;
        if !output.status.success() {
            bail!(
                "ldapadd failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Starts slapd on its directory and waits until it accepts connections.
    pub fn resume(&mut self) -> Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let log = std::fs::File::create(self.dir.join("slapd.log"))
            .context("cannot create slapd's log")?;
        // -d keeps it in the foreground, a child of the test.
        let child = Command::new("slapd")
            .args(["-d", "0", "-h", &format!("{}/", self.url()), "-f"])
            .arg(self.dir.join("slapd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start slapd (apt-get install slapd)")?;
        self.server = Some(child);
        let (address, port) = (self.address.clone(), self.port);
        crate::server::wait_until_answering(
            &mut self.server,
            "slapd",
            &self.dir.join("slapd.log"),
            START_TIMEOUT,
            || TcpStream::connect((address.as_str(), port)).is_ok(),
        )
    }

    /// Stops slapd (SIGTERM) and waits until it has exited.
    pub fn stop(&mut self) -> Result<()> {
        crate::server::terminate(self.server.take(), "slapd")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
