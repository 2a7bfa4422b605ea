//! Who is signed in to the console: argon2id password hashes, random tokens, cookies, the login and logout steps.
//! A session is a random 256-bit token in an `HttpOnly; Secure; SameSite=Strict` cookie; Redis keeps only its
//! SHA-256 (`store::console`). CSRF: every form carries the session's token in a hidden field and every non-GET
//! API call in `X-CSRF-Token` (the login form, before there is a session, a token matching its `sg_login` cookie);
//! a request whose `Origin` is not the console itself is refused as well.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::console::{Account, AccountRole};

/// The session cookie.
pub const SESSION_COOKIE: &str = "sg_session";
/// The login form's CSRF cookie (there is no session yet to hold its token).
pub const LOGIN_COOKIE: &str = "sg_login";
/// The chosen language (`zh` or `en`); not a secret.
pub const LANG_COOKIE: &str = "sg_lang";

/// Shortest and longest password accepted by `settlegate users add`.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=256;
/// Longest account name.
pub const MAX_NAME_CHARS: usize = 64;

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation), a fresh salt each time.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches a stored PHC string (slow on purpose: run it off the async threads).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password matches in practice, checked for unknown names so that a login takes as long whether or
/// not the name exists.
pub static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&random_token()).expect("argon2 hashes a random password"));

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 (lower-case hex) of a session token: its Redis key.
pub fn token_sha256(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a request's `Cookie` headers (the first one; empty counts as absent).
pub fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v).filter_map(Result::ok).collect::<Vec<_>>())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly; Secure; SameSite=Strict`, path `/`, for `max_age_s` (0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age_s: u64, http_only: bool) -> String {
    let mut c = cookie::Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(http_only)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(i64::try_from(max_age_s).unwrap_or(i64::MAX)));
    if max_age_s == 0 {
        c = c.max_age(cookie::time::Duration::ZERO);
    }
    c.build().to_string()
}

/// Whether `name` may be an account name: 1–64 characters, letters, digits, `.`, `_`, `-`, `@`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// A new account from `users add`'s `--role admin|street:<label>`.
pub fn new_account(name: &str, role: &str, password: &str, created_at: &str) -> Result<Account, String> {
    if !is_valid_name(name) {
        return Err(format!("{name:?}: an account name is 1-{MAX_NAME_CHARS} letters, digits, . _ - @"));
    }
    let chars = password.chars().count();
    if !PASSWORD_CHARS.contains(&chars) {
        return Err(format!(
            "a password must be {}-{} characters (got {chars})",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        ));
    }
    let (role, street) = match role.split_once(':') {
        None if role == "admin" => (AccountRole::Admin, None),
        Some(("street", label)) if crate::domain::is_valid_label(label) => (AccountRole::Street, Some(label.into())),
        _ => return Err(format!("--role {role:?}: expected admin or street:<label> (a valid street label)")),
    };
    Ok(Account {
        name: name.to_string(),
        role,
        street,
        password_hash: hash_password(password)?,
        disabled: false,
        created_at: created_at.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_fresh_salt_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("anything", &DUMMY_HASH));
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token("", ""));
        assert_eq!(token_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn cookies_are_read_and_written_strict() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, "a=1; sg_session=tok; sg_lang=en".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, LANG_COOKIE).as_deref(), Some("en"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
        let set = set_cookie(SESSION_COOKIE, "tok", 1800, true);
        for part in ["sg_session=tok", "HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=1800"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(set_cookie(SESSION_COOKIE, "", 0, true).contains("Max-Age=0"));
    }

    #[test]
    fn accounts_from_the_command_line() {
        let a = new_account("wang.li", "street:jinrongjie", "long enough pw", "2026-12-02T10:00:00+08:00").unwrap();
        assert_eq!((a.role, a.street.as_deref()), (AccountRole::Street, Some("jinrongjie")));
        assert!(verify_password("long enough pw", &a.password_hash));
        assert!(new_account("admin", "admin", "short", "t").is_err());
        assert!(new_account("a b", "admin", "long enough pw", "t").is_err());
        assert!(new_account("admin", "street:", "long enough pw", "t").is_err());
        assert!(new_account("admin", "root", "long enough pw", "t").is_err());
    }
}
