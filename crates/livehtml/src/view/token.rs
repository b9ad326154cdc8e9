//! Signed tokens that bind a socket join to the view the page was rendered with.
//!
//! `v2.<issued unix secs>.<render fingerprint, hex>.<page, hex>.<url, base64url>.<HMAC-SHA256,
//! base64url>`. `page` is random per render: the identity under which a page's view is kept
//! while its connection is down.
//! The MAC covers everything before it; a token whose MAC does not verify, or that is older
//! than its maximum age, is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) url: String,
    pub(crate) render: u64,
    pub(crate) issued: u64,
    /// This render of the page, random: whose view a reconnect may resume.
    pub(crate) page: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    Malformed,
    BadSignature,
    Expired,
    /// Issued later than now (beyond [`SKEW`]): no render made it.
    FromTheFuture,
}

/// How far ahead of this process's clock a token's issue time may be: clocks of a deployment's
/// processes differ a little.
pub(crate) const SKEW: u64 = 60;

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed view token",
            Self::BadSignature => "view token signature does not verify",
            Self::Expired => "view token expired",
            Self::FromTheFuture => "view token issued in the future",
        })
    }
}

#[derive(Clone)]
pub(crate) struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// A signer with a random key: tokens are valid in this process only.
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source works");
        Self::new(&key)
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(body.as_bytes());
        mac
    }

    /// `body` with its MAC appended: `<body>.<HMAC-SHA256, base64url>`.
    pub(crate) fn seal(&self, body: &str) -> String {
        let tag = B64.encode(self.mac(body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The body of a sealed string whose MAC verifies.
    pub(crate) fn open<'a>(&self, sealed: &'a str) -> Result<&'a str, TokenError> {
        let (body, tag) = sealed.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        self.mac(body).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
        Ok(body)
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        let body =
            format!("v2.{}.{:016x}.{:016x}.{}", claims.issued, claims.render, claims.page, B64.encode(&claims.url));
        let tag = B64.encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    pub(crate) fn verify(&self, token: &str, now: u64, max_age: u64) -> Result<Claims, TokenError> {
        let (body, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        self.mac(body).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
        let mut parts = body.split('.');
        let (Some("v2"), Some(issued), Some(render), Some(page), Some(url), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let issued: u64 = issued.parse().map_err(|_| TokenError::Malformed)?;
        let render = u64::from_str_radix(render, 16).map_err(|_| TokenError::Malformed)?;
        let page = u64::from_str_radix(page, 16).map_err(|_| TokenError::Malformed)?;
        let url = String::from_utf8(B64.decode(url).map_err(|_| TokenError::Malformed)?)
            .map_err(|_| TokenError::Malformed)?;
        if issued > now.saturating_add(SKEW) {
            return Err(TokenError::FromTheFuture);
        }
        if now.saturating_sub(issued) > max_age {
            return Err(TokenError::Expired);
        }
        Ok(Claims { url, render, issued, page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims { url: "/article/1?x=1".into(), render: 0xdead_beef, issued: 1000, page: 0x1234 }
    }

    #[test]
    fn a_signed_token_verifies() {
        let s = Signer::new(b"secret");
        let t = s.sign(&claims());
        assert_eq!(s.verify(&t, 1010, 60), Ok(claims()));
    }

    #[test]
    fn tampering_is_refused() {
        let s = Signer::new(b"secret");
        let t = s.sign(&claims());
        let other_url = t.replace(&B64.encode("/article/1?x=1"), &B64.encode("/article/2"));
        assert_eq!(s.verify(&other_url, 1010, 60), Err(TokenError::BadSignature));
        let other_hash = t.replacen("00000000deadbeef", "00000000deadbeee", 1);
        assert_eq!(s.verify(&other_hash, 1010, 60), Err(TokenError::BadSignature));
        assert_eq!(Signer::new(b"other key").verify(&t, 1010, 60), Err(TokenError::BadSignature));
        assert_eq!(s.verify("garbage", 1010, 60), Err(TokenError::Malformed));
        assert_eq!(s.verify("a.b.c", 1010, 60), Err(TokenError::Malformed));
    }

    /// An outside probe had a validly signed token issued ten years ahead accepted.
    #[test]
    fn tokens_from_the_future_are_refused() {
        let s = Signer::new(b"secret");
        let ten_years = 10 * 365 * 24 * 3600;
        assert_eq!(s.verify(&s.sign(&claims()), 1000 - ten_years.min(999), 60), Err(TokenError::FromTheFuture));
        let ahead = Claims { issued: 1000 + ten_years, ..claims() };
        assert_eq!(s.verify(&s.sign(&ahead), 1000, u64::MAX), Err(TokenError::FromTheFuture));
        let skewed = Claims { issued: 1000 + SKEW, ..claims() };
        assert!(s.verify(&s.sign(&skewed), 1000, 60).is_ok(), "a little clock skew is fine");
    }

    #[test]
    fn old_tokens_expire() {
        let s = Signer::new(b"secret");
        assert_eq!(s.verify(&s.sign(&claims()), 1000 + 61, 60), Err(TokenError::Expired));
    }
}
