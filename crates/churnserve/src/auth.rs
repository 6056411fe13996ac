//! Bearer tokens: one for registry writes, an optional one for scoring and registry
//! reads. Missing credentials are UNAUTHENTICATED, wrong ones PERMISSION_DENIED.

use churn_registry::Actor;
use tonic::metadata::MetadataMap;

use crate::error::ServiceError;

/// Metadata key a client may set to name itself in the audit log.
pub const ACTOR_HEADER: &str = "x-churn-actor";

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub write_token: Option<String>,
    pub read_token: Option<String>,
}

impl Auth {
    pub fn check(&self, metadata: &MetadataMap, access: Access) -> Result<(), ServiceError> {
        let accepted: Vec<&str> = match access {
            Access::Write => self.write_token.iter().map(String::as_str).collect(),
            Access::Read if self.read_token.is_none() => Vec::new(),
            Access::Read => [&self.read_token, &self.write_token]
                .into_iter()
                .flatten()
                .map(String::as_str)
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
