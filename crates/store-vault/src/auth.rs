//! The token kestrel sends: given (token auth), or obtained by a login on first use and kept
//! alive: renewed at two thirds of its lease while renewal extends it, then replaced by a new
//! login. One login or renewal runs at a time; other requests wait for its token.

use crate::client::{Client, Failure, Method};
use crate::settings::VaultAuth;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The largest JWT file read.
const MAX_JWT_BYTES: u64 = 64 << 10;

/// A token and when to renew it.
pub(crate) struct Lease {
    token: Zeroizing<String>,
    /// The lease's length as last granted (zero: it never expires).
    ttl: Duration,
    /// When to renew or log in again; `None` for a token that never expires.
    renew_at: Option<Instant>,
    /// Whether renewal is still worth asking for.
    renewable: bool,
}

impl Lease {
    fn fixed(token: &Zeroizing<String>) -> Self {
        Self {
            token: token.clone(),
            ttl: Duration::ZERO,
            renew_at: None,
            renewable: false,
        }
    }

    /// A lease granted now for `ttl` (as Vault's `auth` object says).
    fn granted(token: Zeroizing<String>, ttl: Duration, renewable: bool) -> Self {
        Self {
            token,
            ttl,
            renew_at: renew_time(Instant::now(), ttl),
            renewable,
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.renew_at.is_some_and(|at| now >= at)
    }
}

/// Two thirds into the lease: time enough to renew, or log in, before it ends.
fn renew_time(now: Instant, ttl: Duration) -> Option<Instant> {
    (!ttl.is_zero()).then(|| now + ttl * 2 / 3)
}

/// The token, lease and renewability of a login or renewal answer (`auth` object).
fn lease_of(auth: &Value) -> Result<Lease, Failure> {
    let token = auth["client_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::InvalidReply("no client_token in the login answer".into()))?;
    let ttl = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
    let renewable = auth["renewable"].as_bool().unwrap_or(false);
    Ok(Lease::granted(
        Zeroizing::new(token.to_owned()),
        ttl,
        renewable,
    ))
}

#[derive(Serialize)]
struct AppRoleLogin<'a> {
    role_id: &'a str,
    secret_id: &'a str,
}

#[derive(Serialize)]
struct JwtLogin<'a> {
    role: &'a str,
    jwt: &'a str,
}

impl Client {
    /// The token to send now: the current one, renewed or replaced first when due.
    pub(crate) async fn token(&self) -> Result<Zeroizing<String>, Failure> {
        let mut slot = self.lease.lock().await;
        if let Some(lease) = slot.as_mut() {
            if !lease.due(Instant::now()) {
                return Ok(lease.token.clone());
            }
            // A renewal that fails (expired, revoked, past its max TTL) is replaced by a login.
            if lease.renewable && self.renew(lease).await.is_ok() {
                return Ok(lease.token.clone());
            }
        }
        let lease = self.login().await?;
        let token = lease.token.clone();
        *slot = Some(lease);
        Ok(token)
    }

    /// Drops the current token if it is still `refused`, so the next request logs in again.
    pub(crate) async fn forget(&self, refused: &str) {
        let mut slot = self.lease.lock().await;
        if slot.as_ref().is_some_and(|l| l.token.as_str() == refused) {
            *slot = None;
        }
    }

    async fn renew(&self, lease: &mut Lease) -> Result<(), Failure> {
        let reply = self
            .send(
                Method::Post,
                "auth/token/renew-self",
                Some(&lease.token),
                Some(b"{}"),
            )
            .await?;
        let ttl = Duration::from_secs(reply.json.0["auth"]["lease_duration"].as_u64().unwrap_or(0));
        if ttl.is_zero() {
            return Err(Failure::InvalidReply("a renewal without a lease".into()));
        }
        // A renewal that no longer extends the lease has hit the token's max TTL: the next
        // one would gain less and less, so next time kestrel logs in instead.
        lease.renewable = ttl >= lease.ttl;
        lease.ttl = ttl;
        lease.renew_at = renew_time(Instant::now(), ttl);
        Ok(())
    }

    async fn login(&self) -> Result<Lease, Failure> {
        let (path, body) = match &self.auth {
            VaultAuth::Token(token) => return Ok(Lease::fixed(token)),
            VaultAuth::AppRole {
                path,
                role_id,
                secret_id,
            } => (path, json_body(&AppRoleLogin { role_id, secret_id })?),
            VaultAuth::Kubernetes {
                path,
                role,
                jwt_file,
            }
            | VaultAuth::Jwt {
                path,
                role,
                jwt_file,
            } => {
                let jwt = read_jwt(jwt_file)?;
                (path, json_body(&JwtLogin { role, jwt: &jwt })?)
            }
        };
        let failed = |cause| Failure::Login {
            method: self.auth.method(),
            path: path.clone(),
            cause: Box::new(cause),
        };
        let reply = self
            .send(
                Method::Post,
                &format!("auth/{path}/login"),
                None,
                Some(&body),
            )
            .await
            .map_err(failed)?;
        lease_of(&reply.json.0["auth"]).map_err(failed)
    }
}

/// `payload` as JSON, in a buffer wiped on drop (it holds a credential).
pub(crate) fn json_body(payload: &impl Serialize) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut body = Zeroizing::new(Vec::with_capacity(4096));
    serde_json::to_writer(&mut *body, payload)
        .map_err(|e| Failure::InvalidReply(format!("encoding a request: {e}")))?;
    Ok(body)
}

/// The JWT in `file`, read at each login because Kubernetes rotates it.
fn read_jwt(file: &Path) -> Result<Zeroizing<String>, Failure> {
    let failed = |reason: String| Failure::JwtFile {
        path: file.display().to_string(),
        reason,
    };
    let size = std::fs::metadata(file)
        .map_err(|e| failed(e.to_string()))?
        .len();
    if size > MAX_JWT_BYTES {
        return Err(failed(format!("larger than {MAX_JWT_BYTES} bytes")));
    }
    let text = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| failed(e.to_string()))?);
    let jwt = text.trim();
    if jwt.is_empty() {
        return Err(failed("empty".into()));
    }
    Ok(Zeroizing::new(jwt.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_two_thirds_in_and_a_fixed_token_never() {
        let now = Instant::now();
        assert_eq!(
            renew_time(now, Duration::from_secs(30)),
            Some(now + Duration::from_secs(20))
        );
        assert_eq!(renew_time(now, Duration::ZERO), None);
        let fixed = Lease::fixed(&Zeroizing::new("t".into()));
        assert!(!fixed.due(now + Duration::from_secs(1 << 30)));
    }

    #[test]
    fn a_login_answer_without_a_token_is_an_error_that_shows_nothing_of_it() {
        let auth = serde_json::json!({"lease_duration": 60, "renewable": true});
        assert!(lease_of(&auth).is_err());
        let auth =
            serde_json::json!({"client_token": "s.x", "lease_duration": 60, "renewable": true});
        let lease = lease_of(&auth).unwrap();
        assert!(lease.renewable && lease.ttl == Duration::from_secs(60));
    }

    #[test]
    fn a_jwt_file_is_trimmed_and_bounded() {
        let dir = std::env::temp_dir().join(format!("kestrel-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "eyJ.header.sig\n").unwrap();
        assert_eq!(read_jwt(&file).unwrap().as_str(), "eyJ.header.sig");
        std::fs::write(&file, vec![b'a'; (MAX_JWT_BYTES + 1) as usize]).unwrap();
        assert!(read_jwt(&file).is_err());
        let message = read_jwt(&dir.join("absent")).unwrap_err().to_string();
        assert!(message.contains("absent"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
