//! Seals on values the control plane hands one agent and takes back only
//! from that agent (a multi round-trip request's state, a task's id): an
//! HMAC over the agent and what the value is bound to, under a key random
//! per process. A retry, or a task's follow-up, must therefore reach the
//! replica that issued the value (a shared key comes with replicas that
//! share state).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Bytes of the HMAC kept in a seal.
const TAG_BYTES: usize = 16;

pub struct Seal {
    key: hmac::Key,
}

impl Seal {
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system's random source is available");
        Self { key }
    }

    /// The seal of `parts`, in base64url: each part length-prefixed, so no
    /// two lists of parts share one.
    pub fn tag(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(self.raw(parts))
    }

    /// Whether `tag` is the seal of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(tag)
            .is_ok_and(|tag| bool::from(self.raw(parts).as_slice().ct_eq(&tag)))
    }

    fn raw(&self, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut context = hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&context.sign().as_ref()[..TAG_BYTES]);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_holds_only_for_its_own_parts_and_key() {
        let seal = Seal::new();
        let tag = seal.tag(&[b"agent-1", b"call", b"tool"]);
        assert!(seal.verify(&[b"agent-1", b"call", b"tool"], &tag));
        assert!(!seal.verify(&[b"agent-2", b"call", b"tool"], &tag));
        // Parts are length-prefixed: moving a byte between them breaks it.
        assert!(!seal.verify(&[b"agent-1c", b"all", b"tool"], &tag));
        assert!(!Seal::new().verify(&[b"agent-1", b"call", b"tool"], &tag));
        assert!(!seal.verify(&[b"agent-1", b"call", b"tool"], "not base64!"));
        assert!(!seal.verify(&[b"agent-1", b"call", b"tool"], &tag[..10]));
    }
}
