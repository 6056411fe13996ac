//! Bearer tokens: one for registry writes, an optional one for scoring and registry
//! reads. Missing credentials are UNAUTHENTICATED, wrong ones PERMISSION_DENIED.

use tonic::metadata::MetadataMap;

use crate::domain::Actor;
use crate::domain::error::ServiceError;

/// Metadata key a client may set to name itself in the audit log.
const ACTOR_HEADER: &str = "x-churn-actor";

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A bearer token; its `Debug` form never shows it, so configurations can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Token, Self::Err> {
        Ok(Token(text.to_owned()))
    }
}

impl From<&str> for Token {
    fn from(text: &str) -> Token {
        Token(text.to_owned())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub write_token: Option<Token>,
    pub read_token: Option<Token>,
}

impl Auth {
    pub fn check(&self, metadata: &MetadataMap, access: Access) -> Result<(), ServiceError> {
        let accepted: Vec<&str> = match access {
            Access::Write => self.write_token.iter().map(Token::expose).collect(),
            Access::Read if self.read_token.is_none() => Vec::new(),
            Access::Read => [&self.read_token, &self.write_token]
                .into_iter()
                .flatten()
                .map(Token::expose)
                .collect(),
        };
        if accepted.is_empty() {
            return Ok(());
        }
        let what = match access {
            Access::Write => "registry writes",
            Access::Read => "this call",
        };
        let presented = metadata
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ServiceError::Unauthenticated(format!(
                    "{what} need an `authorization: Bearer <token>` header"
                ))
            })?;
        if accepted
            .iter()
            .any(|token| constant_time_eq(token.as_bytes(), presented.as_bytes()))
        {
            Ok(())
        } else {
            Err(ServiceError::PermissionDenied(format!(
                "the bearer token is not valid for {what}"
            )))
        }
    }
}

/// Who the audit log records: the client's `x-churn-actor`, else `anonymous`.
pub fn actor(metadata: &MetadataMap) -> Actor {
    let name = metadata
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    Actor(name.unwrap_or("anonymous").to_owned())
}

/// Compares without an early exit, so response times do not reveal a token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
