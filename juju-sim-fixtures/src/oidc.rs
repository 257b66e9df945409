//! An OpenID Connect provider of a test's own: it serves its discovery document and its keys
//! (a JWKS holding one P-256 key) over HTTPS, as mod_auth_openidc requires, with a self-signed
//! certificate a test gives the module to trust; and it signs the bearer tokens (ES256 JWTs) a
//! test presents to Keystone's federation endpoint behind mod_auth_openidc. It can also sign
//! with a key it does not publish, as a forger would.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

const KEY_ID: &str = "test-key-1";

/// A running provider; it stops serving on drop.
pub struct OidcProvider {
    issuer: String,
    key: EcdsaKeyPair,
    /// A key of the same kind that the JWKS does not hold.
    forger: EcdsaKeyPair,
    rng: SystemRandom,
    /// The certificate it serves with, which is its own CA.
    ca_file: PathBuf,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
    server: Option<JoinHandle<()>>,
}

fn new_key(rng: &SystemRandom) -> Result<EcdsaKeyPair> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map_err(|_| anyhow!("cannot generate a P-256 key"))?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng)
        .map_err(|_| anyhow!("cannot load the P-256 key"))
}

impl OidcProvider {
    /// Starts serving on a free port of `address`; the issuer is `https://<address>:<port>`,
    /// and its certificate is written to `dir`.
    pub fn start(address: &str, dir: &Path) -> Result<OidcProvider> {
        let rng = SystemRandom::new();
        let key = new_key(&rng)?;
        let forger = new_key(&rng)?;
        let listener = TcpListener::bind((address, 0))
            .with_context(|| format!("no free port on {address}"))?;
        let local = listener.local_addr().context("the provider's address")?;
        let issuer = format!("https://{address}:{}", local.port());
        let issued = rcgen::generate_simple_self_signed(vec![address.to_owned()])
            .context("cannot make the provider's certificate")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_file = dir.join("oidc-provider.pem");
        std::fs::write(&ca_file, issued.cert.pem()).context("cannot write the certificate")?;
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(
            vec![issued.cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.signing_key.serialize_der())),
        )
        .context("the provider's TLS configuration")?;
        let documents = Documents {
            tls: Arc::new(tls),
            discovery: discovery(&issuer).to_string(),
            jwks: jwks(key.public_key().as_ref())?.to_string(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let server = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = documents.answer(stream);
                }
            }
        });
        Ok(OidcProvider {
            issuer,
            key,
            forger,
            rng,
            ca_file,
            stop,
            address: local,
            server: Some(server),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The certificate to trust (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// A bearer token for `subject`, valid for `lifetime` from now (a negative one has
    /// expired), signed with the published key.
    pub fn token(&self, subject: &str, lifetime: i64) -> Result<String> {
        self.sign(&self.key, &self.claims(subject, lifetime))
    }

    /// A token for `subject` as the published key would sign it, but signed with another key.
    pub fn forged_token(&self, subject: &str) -> Result<String> {
        self.sign(&self.forger, &self.claims(subject, 300))
    }

    fn claims(&self, subject: &str, lifetime: i64) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": "keystone",
            "email": format!("{subject}@example.com"),
            "iat": now.min(now + lifetime),
            "exp": now + lifetime,
        })
    }

    fn sign(&self, key: &EcdsaKeyPair, claims: &Value) -> Result<String> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": KEY_ID});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key
            .sign(&self.rng, signed.as_bytes())
            .map_err(|_| anyhow!("cannot sign the token"))?;
        Ok(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// What the provider serves, and how.
struct Documents {
    tls: Arc<rustls::ServerConfig>,
    discovery: String,
    jwks: String,
}

impl Documents {
    fn answer(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let connection =
            rustls::ServerConnection::new(Arc::clone(&self.tls)).map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(connection, stream);
        let mut reader = BufReader::new(&mut stream);
        let mut request = String::new();
        reader.read_line(&mut request)?;
        // The headers, unread.
        let mut line = String::new();
        while reader.read_line(&mut line)? > 2 {
            line.clear();
        }
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        let (status, body) = match path {
            "/.well-known/openid-configuration" => ("200 OK", self.discovery.as_str()),
            "/jwks" => ("200 OK", self.jwks.as_str()),
            _ => ("404 Not Found", "{}"),
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()?;
        stream.conn.send_close_notify();
        stream.flush()
    }
}

fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// The JWKS of one P-256 public key (`0x04 || x || y`).
fn jwks(public: &[u8]) -> Result<Value> {
    let point = public
        .strip_prefix(&[4])
        .filter(|p| p.len() == 64)
        .ok_or_else(|| anyhow!("not an uncompressed P-256 point"))?;
    let (x, y) = point.split_at(32);
    Ok(json!({"keys": [{
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": "ES256",
        "kid": KEY_ID,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    }]}))
}
