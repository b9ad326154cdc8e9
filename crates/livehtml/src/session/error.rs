use std::borrow::Cow;
use std::fmt;

use crate::protocol::close;

/// Why a session ends its connection. See [`crate::Session`]'s `# Errors`.
///
/// Any `std::error::Error` converts into it with `?` (closing with 1011); use
/// [`SessionError::close`] to pick the code and the reason the page sees.
pub struct SessionError {
    code: u16,
    reason: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SessionError {
    /// Close the connection with `code` and a short `reason` (cut to the 123 bytes a close
    /// frame can carry).
    pub fn close(code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        Self { code, reason: reason.into(), source: None }
    }

    /// The close code the connection ends with.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason sent in the close frame.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The underlying error, when this came from one.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for SessionError {
    fn from(error: E) -> Self {
        Self { code: close::INTERNAL, reason: Cow::Borrowed("internal error"), source: Some(Box::new(error)) }
    }
}

impl fmt::Debug for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionError")
            .field("code", &self.code)
            .field("reason", &self.reason)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "session failed ({}): {source}", self.code),
            None => write!(f, "session closed ({}): {}", self.code, self.reason),
        }
    }
}
