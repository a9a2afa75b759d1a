//! Who calls: `Basic` for users (argon2 password hashes), `Bearer` for API tokens (SHA-256
//! hashes), both from the configuration file and from the store; what the caller reaches
//! ([`Caller`]); and failed attempts counted per client and the user it tried, with backoff
//! (429 past the limit): only failures wait, so nobody can lock a user out.
//!
//! [`require`] is the middleware in front of every protected route: it puts the [`Caller`] in
//! the request, which handlers take as an extractor.

mod limit;
mod secrets;

pub(crate) use limit::FailureCounter;
pub use secrets::{
    NewToken, TOKEN_PREFIX, hash_password, is_password_hash, token_hash, verify_password,
};

use crate::error::AppError;
use crate::options::AuthOptions;
use crate::state::{AppState, ServerStore};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use kestrel_store::{Actor, SecretAccess, UserRecord};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long a password checked once is accepted again without argon2 (which takes tens of
/// milliseconds by design, too slow for every API call of a script).
const VERIFIED_FOR: Duration = Duration::from_secs(300);

/// Password checks remembered at most.
const VERIFIED_MAX: usize = 1024;

/// The caller of a request, authenticated: who it is, which namespaces it reaches, what it
/// may do with secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    actor: Actor,
    namespaces: Vec<String>,
    secrets: SecretAccess,
}

impl Caller {
    /// A caller acting as `actor`, reaching `namespaces` (and their children; empty: all).
    pub fn new(actor: Actor, namespaces: Vec<String>, secrets: SecretAccess) -> Self {
        Self {
            actor,
            namespaces,
            secrets,
        }
    }

    /// Who the audit trail records.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Whether the caller reaches `namespace`: a grant covers its namespace and children.
    pub fn reaches(&self, namespace: &str) -> bool {
        self.namespaces.is_empty()
            || self
                .namespaces
                .iter()
                .any(|granted| crate::namespaces::is_within(namespace, granted))
    }

    /// The namespaces the caller is limited to (empty: none, every one is reached).
    pub fn within(&self) -> &[String] {
        &self.namespaces
    }

    /// 403 unless the caller reaches `namespace`.
    pub fn require_namespace(&self, namespace: &str) -> Result<(), AppError> {
        if self.reaches(namespace) {
            return Ok(());
        }
        Err(AppError::Forbidden(format!(
            "{} may not reach namespace '{namespace}'",
            self.actor
        )))
    }

    /// 403 unless the caller reaches `namespace` and may `needed` its secrets.
    pub fn require_secrets(&self, namespace: &str, needed: SecretAccess) -> Result<(), AppError> {
        self.require_namespace(namespace)?;
        self.require_secret_access(needed)
    }

    /// 403 unless the caller may `needed` secrets (in the namespaces it reaches).
    pub fn require_secret_access(&self, needed: SecretAccess) -> Result<(), AppError> {
        if self.secrets >= needed {
            return Ok(());
        }
        let what = if needed == SecretAccess::Write {
            "change"
        } else {
            "read"
        };
        Err(AppError::Forbidden(format!(
            "{} may not {what} secrets (its secret access is '{}')",
            self.actor, self.secrets
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| AppError::Unauthorized("Authentication required".into()))
    }
}

/// The middleware of protected routes: 401 without valid credentials, 429 after too many
/// failures, else the request goes on with its [`Caller`].
pub(crate) async fn require(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = client_of(&request);
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(|value| Zeroizing::new(value.to_owned()));
    match state
        .0
        .auth
        .authenticate(header.as_deref().map(String::as_str), &client)
        .await
    {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// The client's address, for counting failures (`local` without one, as in tests).
pub(crate) fn client_of(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "local".to_owned(), |info| info.0.ip().to_string())
}

/// Checks credentials against the configuration's and the store's users and tokens.
pub(crate) struct Authenticator {
    options: AuthOptions,
    store: Arc<dyn ServerStore>,
    failures: FailureCounter,
    /// Keyed digests of (user, password) pairs argon2 accepted, with when and against which
    /// hash (a changed hash invalidates them).
    verified: Mutex<HashMap<[u8; 32], (Instant, String)>>,
    /// The key of those digests, random per process.
    cache_key: [u8; 32],
}

/// The message of every credential failure: it does not say which part was wrong.
const INVALID: &str = "Invalid credentials";

impl Authenticator {
    pub(crate) fn new(
        options: AuthOptions,
        store: Arc<dyn ServerStore>,
        limit: crate::options::FailureLimit,
    ) -> Result<Self, String> {
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key).map_err(|e| format!("cannot draw random bytes: {e}"))?;
        Ok(Self {
            options,
            store,
            failures: FailureCounter::new(limit),
            verified: Mutex::new(HashMap::new()),
            cache_key,
        })
    }

    /// The caller behind an `Authorization` header value, from `client`.
    ///
    /// The credential is checked before any limit, so a valid one always passes, whatever
    /// others sent from anywhere. Failures are counted per client and per user it tried (per
    /// client for tokens): past the limit, that pair's further failures answer 429 with a
    /// wait that doubles each time ([`FailureCounter`]).
    pub(crate) async fn authenticate(
        &self,
        header: Option<&str>,
        client: &str,
    ) -> Result<Caller, AppError> {
        if !self.options.enabled {
            return Ok(Caller::new(
                Actor::System("anonymous".into()),
                Vec::new(),
                SecretAccess::Write,
            ));
        }
        let Some(header) = header else {
            return Err(AppError::Unauthorized(
                "Authentication required: send 'Authorization: Basic' (user) or 'Bearer' (API token)".into(),
            ));
        };
        let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
        let (subject, found) = if scheme.eq_ignore_ascii_case("basic") {
            self.basic(credentials.trim()).await?
        } else if scheme.eq_ignore_ascii_case("bearer") {
            ("token".to_owned(), self.bearer(credentials.trim()).await?)
        } else {
            ("unknown scheme".to_owned(), None)
        };
        let key = failure_key(client, &subject);
        if let Some(caller) = found {
            self.failures.succeed(&key);
            return Ok(caller);
        }
        let now = Instant::now();
        let waiting = self.failures.blocked(&key, now).is_some();
        self.failures.fail(&key, now);
        match self.failures.blocked(&key, now) {
            Some(left) if waiting => Err(AppError::TooManyRequests(left.as_secs().max(1))),
            _ => Err(AppError::Unauthorized(INVALID.into())),
        }
    }

    /// A user by `user:password` in base64: the user name tried (what failures are counted
    /// under) and the caller, when the password is right.
    async fn basic(&self, encoded: &str) -> Result<(String, Option<Caller>), AppError> {
        let malformed = || ("malformed basic".to_owned(), None);
        let Some(decoded) = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Zeroizing::new)
        else {
            return Ok(malformed());
        };
        let Some((name, password)) = decoded.split_once(':') else {
            return Ok(malformed());
        };
        let user = self.user(name).await?;
        let caller = self
            .password_matches(name, password, user.as_ref())
            .await
            .then_some(user)
            .flatten()
            .map(|u| Caller::new(Actor::User(u.name), u.namespaces, u.secrets));
        Ok((format!("user:{name}"), caller))
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, AppError> {
        if let Some(user) = self.options.users.iter().find(|u| u.name == name) {
            return Ok(Some(user.clone()));
        }
        Ok(self.store.user(name).await?)
    }

    /// Whether `password` is `user`'s. An unknown user costs one argon2 check all the same,
    /// so that timing does not tell which names exist.
    async fn password_matches(
        &self,
        name: &str,
        password: &str,
        user: Option<&UserRecord>,
    ) -> bool {
        let hash = user.map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
        let digest = self.digest(name, password);
        if user.is_some() && self.recently_verified(&digest, &hash) {
            return true;
        }
        let password = Zeroizing::new(password.to_owned());
        let checked = hash.clone();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &checked))
            .await
            .unwrap_or(false);
        if ok && user.is_some() {
            self.remember(digest, hash);
        }
        ok && user.is_some()
    }

    fn digest(&self, name: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.cache_key);
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, String)>> {
        // Each entry is written whole: a panic elsewhere cannot leave one half-written.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recently_verified(&self, digest: &[u8; 32], hash: &str) -> bool {
        self.verified().get(digest).is_some_and(|(at, known)| {
            at.elapsed() < VERIFIED_FOR && secrets::same_hash(known, hash)
        })
    }

    fn remember(&self, digest: [u8; 32], hash: String) {
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_MAX {
            verified.retain(|_, (at, _)| at.elapsed() < VERIFIED_FOR);
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
        }
        verified.insert(digest, (Instant::now(), hash));
    }

    /// A token: the configuration's (each compared in constant time), then the store's.
    async fn bearer(&self, token: &str) -> Result<Option<Caller>, AppError> {
        if token.is_empty() {
            return Ok(None);
        }
        let hash = token_hash(token);
        let configured = self
            .options
            .tokens
            .iter()
            .fold(None, |found, t| match found {
                None if secrets::same_hash(&t.token_hash, &hash) => Some(t.record.clone()),
                _ => found,
            });
        let record = match configured {
            Some(record) => Some(record),
            None => self.store.token_by_hash(&hash).await?,
        };
        Ok(record.map(|t| Caller::new(Actor::Token(t.name), t.namespaces, t.secrets)))
    }
}

/// What failures of `subject` (a user name, or tokens) from `client` are counted under. A
/// name longer than any user's is cut: the map of counts stays bounded per attempt.
fn failure_key(client: &str, subject: &str) -> String {
    let cut = subject
        .char_indices()
        .nth(300)
        .map_or(subject, |(end, _)| &subject[..end]);
    format!("{client} {cut}")
}

/// A valid hash of a password nobody has, checked for unknown users.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("kestrel: no such user").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_covers_its_namespace_and_children_only() {
        let caller = Caller::new(
            Actor::User("ada".into()),
            vec!["company.team".into()],
            SecretAccess::Read,
        );
        assert!(caller.reaches("company.team"));
        assert!(caller.reaches("company.team.project"));
        assert!(!caller.reaches("company"));
        assert!(!caller.reaches("company.teams"));
        assert!(
            caller
                .require_secrets("company.team", SecretAccess::Read)
                .is_ok()
        );
        let refused = caller
            .require_secrets("company.team", SecretAccess::Write)
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "user:ada may not change secrets (its secret access is 'read')"
        );
        let everywhere = Caller::new(Actor::Token("ci".into()), Vec::new(), SecretAccess::None);
        assert!(everywhere.reaches("anything.at.all"));
    }
}
