//! Which key of a repository decrypts a Keystone token, for operators chasing "Could not
//! recognize Fernet token" (keystone-charm fernet validate-token).

use base64::Engine as _;

use super::KeySet;

/// What a token revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenReport {
    /// The index of the key file that decrypts it.
    pub key_index: u32,
    /// The token's creation time, unix seconds (Fernet's timestamp field).
    pub issued_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0} holds no keys")]
    Empty(String),
    #[error("the token is not a Fernet token (not url-safe base64 of a version 0x80 token)")]
    NotFernet,
    #[error(
        "no key in {repository} decrypts this token: it was issued with keys this unit never received, or they were rotated away"
    )]
    NoKey { repository: String },
}

/// Tries every key of `set` (read from `repository`, named in errors), primary first.
pub fn validate_token(
    set: Option<&KeySet>,
    repository: &str,
    token: &str,
) -> Result<TokenReport, TokenError> {
    let set = set.ok_or_else(|| TokenError::Empty(repository.to_owned()))?;
    validate_with(set, token).ok_or_else(|| TokenError::NoKey {
        repository: repository.to_owned(),
    })?
}

/// Tries the keys of a set; None when none decrypts the token.
pub fn validate_with(set: &KeySet, token: &str) -> Option<Result<TokenReport, TokenError>> {
    let token = token.trim();
    // Keystone strips the `=` padding; the decoder here wants none either.
    let raw = match base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
    {
        Ok(raw) if raw.len() > 9 && raw[0] == 0x80 => raw,
        _ => return Some(Err(TokenError::NotFernet)),
    };
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&raw[1..9]);
    let issued_at = u64::from_be_bytes(issued);
    for (index, key) in set.keys().iter().rev() {
        let Some(fernet) = fernet::Fernet::new(key.expose()) else {
            continue;
        };
        if fernet.decrypt(token).is_ok() {
            return Some(Ok(TokenReport {
                key_index: *index,
                issued_at,
            }));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_sets::Key;

    #[test]
    fn a_token_is_traced_to_the_key_that_made_it_padded_or_not() {
        let set = KeySet::setup(Key::generate().unwrap(), Key::generate().unwrap())
            .rotate(Key::generate().unwrap(), 4);
        let primary = &set.keys()[&set.primary_index()];
        let token = fernet::Fernet::new(primary.expose())
            .unwrap()
            .encrypt(b"payload");
        let unpadded = token.trim_end_matches('=');
        for t in [token.as_str(), unpadded] {
            let report = validate_with(&set, t)
                .expect("a key decrypts it")
                .expect("fernet");
            assert_eq!(report.key_index, set.primary_index());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert!(now.abs_diff(report.issued_at) < 60);
        }
        let other = KeySet::setup(Key::generate().unwrap(), Key::generate().unwrap());
        assert!(validate_with(&other, &token).is_none());
        assert!(matches!(
            validate_with(&set, "not a token"),
            Some(Err(TokenError::NotFernet))
        ));
    }
}
