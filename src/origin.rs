//! Where apt installs OpenStack from: `openstack-origin`, in every form charmhelpers'
//! `add_source` takes, with an optional `|<key>`. Parsed and checked against this machine's
//! series before anything is written; what to write and run comes back as a [`SourcePlan`],
//! which `host::packages` applies.
//!
//! The charm owns three lists: `cloud-archive.list` (a Cloud Archive pocket) and
//! `proposed.list` (the series' -proposed pocket), written as charmhelpers writes them, and
//! `openstack-origin.list` for a `deb` line or a URL. Each is there exactly when the origin asks
//! for it. PPAs and `cloud-archive:` specs go to `add-apt-repository`, as charmhelpers hands
//! them: it fetches a PPA's signing key from Launchpad.

use std::fmt;

/// The Cloud Archive pocket's list, and the -proposed pocket's.
pub const CLOUD_ARCHIVE_LIST: &str = "/etc/apt/sources.list.d/cloud-archive.list";
pub const PROPOSED_LIST: &str = "/etc/apt/sources.list.d/proposed.list";
/// A `deb` line or a URL the origin names.
pub const ORIGIN_LIST: &str = "/etc/apt/sources.list.d/openstack-origin.list";

/// Where the keys an origin gives are kept, one binary keyring per key.
pub const KEYRING_DIR: &str = "/etc/apt/trusted.gpg.d";

/// The Ubuntu series this charm runs on, each with the OpenStack release its own archive has
/// and the releases the Cloud Archive adds for it.
const SERIES: [(&str, &str, &[&str]); 2] = [
    ("jammy", "yoga", &["zed", "antelope", "bobcat", "caracal"]),
    (
        "noble",
        "caracal",
        &["dalmatian", "epoxy", "flamingo", "gazpacho"],
    ),
];

/// Every OpenStack release's codename, oldest first: a bare name is a release only if it is
/// one of these.
const RELEASES: [&str; 33] = [
    "diablo",
    "essex",
    "folsom",
    "grizzly",
    "havana",
    "icehouse",
    "juno",
    "kilo",
    "liberty",
    "mitaka",
    "newton",
    "ocata",
    "pike",
    "queens",
    "rocky",
    "stein",
    "train",
    "ussuri",
    "victoria",
    "wallaby",
    "xena",
    "yoga",
    "zed",
    "antelope",
    "bobcat",
    "caracal",
    "dalmatian",
    "epoxy",
    "flamingo",
    "gazpacho",
    "hibiscus",
    "ibex",
    "jaguar",
];

/// The operating system the origin is for: its distribution (`ubuntu`, `debian`) and series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    pub distribution: String,
    pub series: String,
}

impl OsRelease {
    /// From /etc/os-release (`ID`, `VERSION_CODENAME`).
    pub fn from_os_release(text: &str) -> OsRelease {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .map(|value| value.trim().trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        OsRelease {
            distribution: field("ID"),
            series: field("VERSION_CODENAME"),
        }
    }

    fn is_ubuntu(&self) -> bool {
        self.distribution == "ubuntu"
    }
}

/// A key that signs an origin's packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKey {
    /// An ASCII-armoured public key.
    Armoured(String),
    /// A key id, fetched from the Ubuntu keyserver over HTTPS.
    Id(String),
}

/// What the origin asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The distribution's own archive: nothing to add.
    Distro,
    /// The series' -proposed pocket as well.
    Proposed,
    /// A Cloud Archive pocket (`jammy-updates/caracal`).
    CloudArchive { pocket: String },
    /// An apt line (`deb [options] <uri> <suite> [components]`).
    Deb { line: String },
    /// What `add-apt-repository --yes <spec>` adds: a PPA, a `cloud-archive:` spec, the Cloud
    /// Archive's staging PPA.
    AptRepository { spec: String },
}

/// An origin, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    pub key: Option<SigningKey>,
    /// Said to the operator when the origin means less here than on Ubuntu.
    pub note: Option<String>,
}

/// Why an origin cannot be used; said in the blocked status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError(pub String);

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "openstack-origin: {}", self.0)
    }
}

impl std::error::Error for OriginError {}

fn refuse<T>(reason: impl Into<String>) -> Result<T, OriginError> {
    Err(OriginError(reason.into()))
}

/// Parses `value` (the option, `<source>[|<key>]`) for `os`.
pub fn parse(value: &str, os: &OsRelease) -> Result<Origin, OriginError> {
    let (source, key) = match value.split_once('|') {
        Some((source, key)) => (source.trim(), signing_key(key.trim())?),
        None => (value.trim(), None),
    };
    if source.contains(['\n', '\r', '\0']) {
        return refuse("a source is one line");
    }
    let mut note = None;
    let source = if source == "distro" {
        Source::Distro
    } else if source == "proposed" || source == "distro-proposed" {
        proposed(os)?
    } else if let Some(spec) = source.strip_prefix("cloud-archive:") {
        apt_repository(&format!("cloud-archive:{spec}"), os)?
    } else if source.starts_with("ppa:") {
        apt_repository(source, os)?
    } else if source.starts_with("deb ") {
        deb(source, os)?
    } else if source.starts_with("http:") || source.starts_with("https:") {
        // add-apt-repository's meaning of a bare URL.
        deb(&format!("deb {source} {} main", os.series), os)?
    } else if let Some(pocket) = source.strip_prefix("cloud:") {
        cloud(pocket, os)?
    } else if let Some((release, suffix)) = bare_release(source) {
        let (found, said) = bare(release, suffix, os)?;
        note = said;
        found
    } else {
        return refuse(format!(
            "{source:?} is not a source: use distro, proposed, cloud:<series>-<release>, \
             <release>, ppa:<owner>/<name>, deb <line> or a URL"
        ));
    };
    Ok(Origin { source, key, note })
}

fn signing_key(key: &str) -> Result<Option<SigningKey>, OriginError> {
    if key.is_empty() || key == "None" {
        return Ok(None);
    }
    if key.contains('-') || key.contains('\n') {
        let armoured = key.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----")
            && key.contains("-----END PGP PUBLIC KEY BLOCK-----");
        if !armoured {
            return refuse("the key after | has no ASCII armour markers");
        }
        return Ok(Some(SigningKey::Armoured(key.to_owned())));
    }
    let id = key.strip_prefix("0x").unwrap_or(key);
    if !(8..=40).contains(&id.len()) || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return refuse("the key after | is neither an armoured key nor a key id");
    }
    Ok(Some(SigningKey::Id(id.to_owned())))
}

fn ubuntu_series(
    os: &OsRelease,
) -> Result<&'static (&'static str, &'static str, &'static [&'static str]), OriginError> {
    SERIES
        .iter()
        .find(|(series, _, _)| os.is_ubuntu() && *series == os.series)
        .map_or_else(
            || {
                refuse(format!(
                    "{} {} has no Cloud Archive; this charm knows it for Ubuntu {}",
                    os.distribution,
                    os.series,
                    SERIES.map(|s| s.0).join(" and ")
                ))
            },
            Ok,
        )
}

fn proposed(os: &OsRelease) -> Result<Source, OriginError> {
    if !os.is_ubuntu() {
        return refuse(format!(
            "{} has no Ubuntu -proposed pocket",
            os.distribution
        ));
    }
    Ok(Source::Proposed)
}

/// `spec` with `{series}` replaced, as charmhelpers does for specs written for any series.
fn spec_for(spec: &str, os: &OsRelease) -> Result<String, OriginError> {
    let spec = spec.replace("{series}", &os.series);
    let printable = |c: char| !c.is_control() || c == '\t';
    if !spec.chars().all(printable) {
        return refuse("a source is printable text");
    }
    Ok(spec)
}

fn apt_repository(spec: &str, os: &OsRelease) -> Result<Source, OriginError> {
    let spec = spec_for(spec, os)?;
    let name = spec.strip_prefix("ppa:").unwrap_or(&spec);
    if spec.starts_with("ppa:")
        && !name.split_once('/').is_some_and(|(owner, ppa)| {
            let part = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
            };
            part(owner) && part(ppa)
        })
    {
        return refuse(format!("{spec} is not ppa:<owner>/<name>"));
    }
    Ok(Source::AptRepository { spec })
}

/// A `deb` line: `deb [options] <uri> <suite> [components...]`.
fn deb(line: &str, os: &OsRelease) -> Result<Source, OriginError> {
    let line = spec_for(line, os)?;
    let rest = line.trim_start_matches("deb ").trim();
    let rest = match rest.strip_prefix('[') {
        Some(options) => match options.split_once(']') {
            Some((_, rest)) => rest.trim(),
            None => return refuse(format!("{line:?}: its [options] are not closed")),
        },
        None => rest,
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.len() < 2 || !fields[0].contains(':') {
        return refuse(format!(
            "{line:?} is not deb [options] <uri> <suite> [components]"
        ));
    }
    Ok(Source::Deb { line })
}

/// `cloud:<pocket>`: `<series>-<release>[/updates|/proposed|/staging]`, or `<release>[/...]`
/// for this machine's series.
fn cloud(pocket: &str, os: &OsRelease) -> Result<Source, OriginError> {
    let &(series, _, releases) = ubuntu_series(os)?;
    let (name, suffix) = match pocket.split_once('/') {
        Some((name, suffix)) => (name, Some(suffix)),
        None => (pocket, None),
    };
    let (named_series, release) = match name.split_once('-') {
        Some((s, r)) => (s, r),
        None => (series, name),
    };
    if named_series != series {
        return refuse(format!(
            "cloud:{pocket} is for {named_series}, and this machine runs {series}"
        ));
    }
    if !releases.contains(&release) {
        return refuse(format!(
            "the Cloud Archive has no {release} for {series}; it has {}",
            releases.join(", ")
        ));
    }
    match suffix {
        None | Some("updates") => Ok(Source::CloudArchive {
            pocket: format!("{series}-updates/{release}"),
        }),
        Some("proposed") => Ok(Source::CloudArchive {
            pocket: format!("{series}-proposed/{release}"),
        }),
        Some("staging") => Ok(Source::AptRepository {
            spec: format!("ppa:ubuntu-cloud-archive/{release}-staging"),
        }),
        Some(other) => refuse(format!(
            "cloud:{pocket}: a pocket ends in /updates, /proposed or /staging, not /{other}"
        )),
    }
}

/// `<release>` or `<release>/proposed`.
fn bare_release(source: &str) -> Option<(&str, Option<&str>)> {
    let (release, suffix) = match source.split_once('/') {
        Some((release, "proposed")) => (release, Some("proposed")),
        Some(_) => return None,
        None => (source, None),
    };
    RELEASES.contains(&release).then_some((release, suffix))
}

/// A bare release: the Cloud Archive's pocket where the series needs it, else the series' own
/// archive. Off Ubuntu (a test machine) the distribution's own archive, with a note.
fn bare(
    release: &str,
    suffix: Option<&str>,
    os: &OsRelease,
) -> Result<(Source, Option<String>), OriginError> {
    if !os.is_ubuntu() {
        let note = format!(
            "{} {} has no Cloud Archive: {release} means its own archive here",
            os.distribution, os.series
        );
        return Ok((Source::Distro, Some(note)));
    }
    let &(series, own, releases) = ubuntu_series(os)?;
    if releases.contains(&release) {
        let pocket = match suffix {
            Some(_) => format!("{series}-proposed/{release}"),
            None => format!("{series}-updates/{release}"),
        };
        return Ok((Source::CloudArchive { pocket }, None));
    }
    if release != own {
        return refuse(format!(
            "{release} is not available on {series}: its own archive has {own}, the Cloud \
             Archive {}",
            releases.join(", ")
        ));
    }
    match suffix {
        Some(_) => Ok((Source::Proposed, None)),
        None => Ok((Source::Distro, None)),
    }
}

/// What applying an origin writes and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePlan {
    /// The charm's lists: each with its content, or None where it must be absent.
    pub lists: Vec<(&'static str, Option<String>)>,
    /// Installed first: the Cloud Archive's keyring.
    pub packages: Vec<&'static str>,
    /// `add-apt-repository --yes <spec>`.
    pub apt_repository: Option<String>,
    pub key: Option<SigningKey>,
}

impl Origin {
    /// The files and commands, for a machine of `series`.
    pub fn plan(&self, series: &str) -> SourcePlan {
        let mut cloud_archive = None;
        let mut proposed = None;
        let mut origin = None;
        let mut packages = Vec::new();
        let mut apt_repository = None;
        match &self.source {
            Source::Distro => {}
            Source::Proposed => proposed = Some(proposed_list(series)),
            Source::CloudArchive { pocket } => {
                cloud_archive = Some(cloud_archive_list(pocket));
                packages.push("ubuntu-cloud-keyring");
            }
            Source::Deb { line } => origin = Some(format!("{line}\n")),
            Source::AptRepository { spec } => apt_repository = Some(spec.clone()),
        }
        SourcePlan {
            lists: vec![
                (CLOUD_ARCHIVE_LIST, cloud_archive),
                (PROPOSED_LIST, proposed),
                (ORIGIN_LIST, origin),
            ],
            packages,
            apt_repository,
            key: self.key.clone(),
        }
    }
}

/// `cloud-archive.list`, as charmhelpers writes it.
pub fn cloud_archive_list(pocket: &str) -> String {
    format!(
        "# Ubuntu Cloud Archive\ndeb http://ubuntu-cloud.archive.canonical.com/ubuntu {pocket} main\n"
    )
}

/// `proposed.list`, as charmhelpers writes it on amd64.
pub fn proposed_list(series: &str) -> String {
    format!(
        "# Proposed\ndeb http://archive.ubuntu.com/ubuntu {series}-proposed main universe \
         multiverse restricted\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ubuntu(series: &str) -> OsRelease {
        OsRelease {
            distribution: "ubuntu".to_owned(),
            series: series.to_owned(),
        }
    }

    fn source(value: &str, series: &str) -> Result<Source, String> {
        parse(value, &ubuntu(series))
            .map(|o| o.source)
            .map_err(|e| e.to_string())
    }

    fn cloud(pocket: &str) -> Result<Source, String> {
        Ok(Source::CloudArchive {
            pocket: pocket.to_owned(),
        })
    }

    fn apt(spec: &str) -> Result<Source, String> {
        Ok(Source::AptRepository {
            spec: spec.to_owned(),
        })
    }

    fn deb(line: &str) -> Result<Source, String> {
        Ok(Source::Deb {
            line: line.to_owned(),
        })
    }

    #[test]
    fn every_form_of_add_source_means_what_it_means_to_charmhelpers() {
        for (value, series, expected) in [
            ("distro", "jammy", Ok(Source::Distro)),
            ("proposed", "jammy", Ok(Source::Proposed)),
            ("distro-proposed", "noble", Ok(Source::Proposed)),
            (
                "cloud:jammy-caracal",
                "jammy",
                cloud("jammy-updates/caracal"),
            ),
            (
                "cloud:jammy-caracal/updates",
                "jammy",
                cloud("jammy-updates/caracal"),
            ),
            (
                "cloud:jammy-caracal/proposed",
                "jammy",
                cloud("jammy-proposed/caracal"),
            ),
            ("cloud:caracal", "jammy", cloud("jammy-updates/caracal")),
            ("cloud:noble-epoxy", "noble", cloud("noble-updates/epoxy")),
            (
                "cloud:jammy-caracal/staging",
                "jammy",
                apt("ppa:ubuntu-cloud-archive/caracal-staging"),
            ),
            ("caracal", "jammy", cloud("jammy-updates/caracal")),
            ("caracal/proposed", "jammy", cloud("jammy-proposed/caracal")),
            ("caracal", "noble", Ok(Source::Distro)),
            ("caracal/proposed", "noble", Ok(Source::Proposed)),
            ("yoga", "jammy", Ok(Source::Distro)),
            ("ppa:team/keystone", "noble", apt("ppa:team/keystone")),
            (
                "deb http://mirror.example/ubuntu {series} main",
                "noble",
                deb("deb http://mirror.example/ubuntu noble main"),
            ),
            (
                "deb [signed-by=/etc/apt/k.gpg] https://m.example/u jammy main",
                "jammy",
                deb("deb [signed-by=/etc/apt/k.gpg] https://m.example/u jammy main"),
            ),
            (
                "http://mirror.example/ppa",
                "jammy",
                deb("deb http://mirror.example/ppa jammy main"),
            ),
            (
                "cloud-archive:caracal",
                "jammy",
                apt("cloud-archive:caracal"),
            ),
        ] {
            assert_eq!(source(value, series), expected, "{value} on {series}");
        }
    }

    #[test]
    fn an_origin_this_machine_cannot_have_is_refused_with_what_to_use() {
        for (value, series, said) in [
            (
                "cloud:noble-caracal",
                "jammy",
                "cloud:noble-caracal is for noble, and this machine runs jammy",
            ),
            (
                "cloud:jammy-dalmatian",
                "jammy",
                "the Cloud Archive has no dalmatian for jammy; it has zed, antelope, bobcat, caracal",
            ),
            (
                "cloud:jammy-caracal/edge",
                "jammy",
                "a pocket ends in /updates, /proposed or /staging, not /edge",
            ),
            (
                "epoxy",
                "jammy",
                "epoxy is not available on jammy: its own archive has yoga, the Cloud Archive zed, antelope, bobcat, caracal",
            ),
            ("xena", "noble", "xena is not available on noble"),
            (
                "cloud:focal-ussuri",
                "focal",
                "ubuntu focal has no Cloud Archive; this charm knows it for Ubuntu jammy and noble",
            ),
            ("caracl", "jammy", "\"caracl\" is not a source"),
            (
                "caracal/updates",
                "jammy",
                "\"caracal/updates\" is not a source",
            ),
            ("", "jammy", "\"\" is not a source"),
            (
                "ppa:keystone",
                "jammy",
                "ppa:keystone is not ppa:<owner>/<name>",
            ),
            (
                "deb jammy",
                "jammy",
                "is not deb [options] <uri> <suite> [components]",
            ),
            (
                "deb [trusted=yes http://x jammy main",
                "jammy",
                "its [options] are not closed",
            ),
            (
                "deb http://x/ubuntu jammy main|not a key",
                "jammy",
                "neither an armoured key nor a key id",
            ),
            (
                "deb http://x/ubuntu jammy main|-----BEGIN PGP",
                "jammy",
                "no ASCII armour markers",
            ),
        ] {
            let error = source(value, series).unwrap_err();
            assert!(error.starts_with("openstack-origin: "), "{error}");
            assert!(error.contains(said), "{value} on {series}: {error}");
        }
        let injected = "distro\n[section]";
        assert!(source(injected, "jammy").is_err());
    }

    #[test]
    fn the_lists_are_what_charmhelpers_writes_and_only_the_ones_asked_for() {
        let plan = |value: &str, series: &str| parse(value, &ubuntu(series)).unwrap().plan(series);
        let caracal = plan("cloud:jammy-caracal", "jammy");
        assert_eq!(
            caracal.lists,
            [
                (
                    CLOUD_ARCHIVE_LIST,
                    Some(
                        "# Ubuntu Cloud Archive\n\
                         deb http://ubuntu-cloud.archive.canonical.com/ubuntu \
                         jammy-updates/caracal main\n"
                            .to_owned()
                    )
                ),
                (PROPOSED_LIST, None),
                (ORIGIN_LIST, None),
            ]
        );
        assert_eq!(caracal.packages, ["ubuntu-cloud-keyring"]);
        let proposed = plan("proposed", "noble");
        assert_eq!(
            proposed.lists[1].1.as_deref(),
            Some(
                "# Proposed\ndeb http://archive.ubuntu.com/ubuntu noble-proposed main universe \
                 multiverse restricted\n"
            )
        );
        assert_eq!(proposed.lists[0], (CLOUD_ARCHIVE_LIST, None));
        let distro = plan("distro", "jammy");
        assert!(distro.lists.iter().all(|(_, content)| content.is_none()));
        assert_eq!(distro.apt_repository, None);
        let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n-----END PGP PUBLIC KEY BLOCK-----";
        let ppa = plan(&format!("ppa:team/keystone|{key}"), "jammy");
        assert_eq!(ppa.apt_repository.as_deref(), Some("ppa:team/keystone"));
        assert_eq!(ppa.key, Some(SigningKey::Armoured(key.to_owned())));
        let by_id = plan("deb http://x/ubuntu jammy main|0xABCDEF0123456789", "jammy");
        assert_eq!(
            by_id.key,
            Some(SigningKey::Id("ABCDEF0123456789".to_owned()))
        );
    }

    #[test]
    fn off_ubuntu_a_release_is_the_distributions_own_archive_and_says_so() {
        let debian = OsRelease::from_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n",
        );
        assert_eq!(
            debian,
            OsRelease {
                distribution: "debian".to_owned(),
                series: "bookworm".to_owned()
            }
        );
        let origin = parse("caracal", &debian).unwrap();
        assert_eq!(origin.source, Source::Distro);
        assert_eq!(
            origin.note.as_deref(),
            Some("debian bookworm has no Cloud Archive: caracal means its own archive here")
        );
        assert!(parse("cloud:jammy-caracal", &debian).is_err());
        assert!(parse("proposed", &debian).is_err());
        let local = parse("deb [trusted=yes] file:/srv/repo ./", &debian).unwrap();
        assert_eq!(
            local.plan("bookworm").lists[2],
            (
                ORIGIN_LIST,
                Some("deb [trusted=yes] file:/srv/repo ./\n".to_owned())
            )
        );
    }
}
