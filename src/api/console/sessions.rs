//! The console's sign-in sessions: an admin token exchanged once for a
//! random cookie. Only the cookie's SHA-256 is kept (a leaked table opens
//! nothing), each session has its own CSRF token, lives at most
//! [`LIFETIME`], and there are at most [`MAX_SESSIONS`] (the oldest go
//! first). Not on any agent's path: a plain lock is enough.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a sign-in lasts.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// The most sign-ins kept at once.
pub const MAX_SESSIONS: usize = 256;

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    pub admin: Arc<str>,
    /// What every state-changing request of this session must carry.
    pub csrf: String,
    expires: Instant,
}

#[derive(Default)]
pub struct ConsoleSessions {
    by_cookie: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn digest(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl ConsoleSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_cookie.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sign `admin` in: the cookie's value and the session.
    pub fn open(&self, admin: Arc<str>) -> (String, Session) {
        let cookie = random_hex();
        let session = Session {
            admin,
            csrf: random_hex(),
            expires: Instant::now() + LIFETIME,
        };
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = (sessions.iter().min_by_key(|(_, s)| s.expires)).map(|(k, _)| *k);
            match oldest {
                Some(key) => sessions.remove(&key),
                None => break,
            };
        }
        sessions.insert(digest(&cookie), session.clone());
        (cookie, session)
    }

    /// The session a cookie opens, if it is live.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let key = digest(cookie);
        let mut sessions = self.lock();
        match sessions.get(&key) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, cookie: &str) {
        self.lock().remove(&digest(cookie));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_opens_its_session_until_closed_and_the_table_is_bounded() {
        let sessions = ConsoleSessions::default();
        let (cookie, session) = sessions.open("ops".into());
        assert_eq!(&*sessions.get(&cookie).unwrap().admin, "ops");
        assert_eq!(sessions.get(&cookie).unwrap().csrf, session.csrf);
        assert!(sessions.get("forged").is_none());
        sessions.close(&cookie);
        assert!(sessions.get(&cookie).is_none());
        let first = sessions.open("a".into()).0;
        for _ in 0..MAX_SESSIONS {
            sessions.open("b".into());
        }
        assert!(sessions.get(&first).is_none(), "the oldest went first");
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
    }
}
