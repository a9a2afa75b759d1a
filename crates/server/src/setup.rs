//! The first admin: while nobody can sign in (authentication on, no user, no live token, none
//! configured), `/ui/setup` is public and creates the first user, with secret access write, for
//! whoever types the one-time code this server printed on its log at start. The code is drawn
//! once per process, compared in constant time, and gone once used.

use crate::state::AppState;
use std::sync::{Mutex, MutexGuard, PoisonError};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The one-time code of this process, drawn when first asked for.
#[derive(Default)]
pub(crate) struct FirstAdmin {
    code: Mutex<Option<Zeroizing<String>>>,
}

impl FirstAdmin {
    fn lock(&self) -> MutexGuard<'_, Option<Zeroizing<String>>> {
        // One assignment per change: a panic cannot leave it half-written.
        self.code.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The code, drawn now if it was not yet: four groups of four letters and digits (80
    /// bits), easy to copy from a log line.
    pub(crate) fn code(&self) -> Result<String, String> {
        let mut code = self.lock();
        if code.is_none() {
            *code = Some(draw()?);
        }
        Ok(code
            .as_ref()
            .map(|code| code.to_string())
            .unwrap_or_default())
    }

    /// Whether `typed` is the code; it is spent when it is.
    pub(crate) fn redeem(&self, typed: &str) -> bool {
        let mut code = self.lock();
        let matches = code.as_ref().is_some_and(|code| {
            let typed = typed.trim().to_ascii_uppercase();
            bool::from(typed.as_bytes().ct_eq(code.as_bytes()))
        });
        if matches {
            *code = None;
        }
        matches
    }
}

/// Letters and digits that cannot be mistaken for one another.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn draw() -> Result<Zeroizing<String>, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw random bytes: {e}"))?;
    let letters: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    let groups: Vec<String> = letters.chunks(4).map(|g| g.iter().collect()).collect();
    Ok(Zeroizing::new(groups.join("-")))
}

/// Whether nobody can sign in yet: authentication is on, the configuration names no user or
/// token, and the store holds no user and no live token.
pub(crate) async fn nobody_can_sign_in(state: &AppState) -> bool {
    let auth = &state.options().auth;
    if !auth.enabled || !auth.users.is_empty() || !auth.tokens.is_empty() {
        return false;
    }
    let store = state.store();
    let (Ok(users), Ok(tokens)) = (store.users().await, store.tokens().await) else {
        return false;
    };
    users.is_empty() && tokens.iter().all(|t| t.revoked_at.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_used_once() {
        let first = FirstAdmin::default();
        let code = first.code().unwrap();
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(first.code().unwrap(), code, "drawn once");
        assert!(!first.redeem("AAAA-AAAA-AAAA-AAAA"));
        assert!(first.redeem(&code.to_lowercase()));
        assert!(!first.redeem(&code), "spent");
    }
}
