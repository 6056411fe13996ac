//! Who may call what: one table of every gRPC method and HTTP route with the role it
//! needs, and one tower layer that enforces it before any handler runs, on the gRPC port
//! and on the HTTP port alike. Tokens are bearer tokens: one for writes, an optional one
//! for reads (the write token reads too). Missing credentials are UNAUTHENTICATED, wrong
//! ones PERMISSION_DENIED. The console's login cookie carries a token as well.

use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::Either;
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use tonic::metadata::MetadataMap;

use crate::domain::Actor;
use crate::domain::error::ServiceError;

/// Metadata key a client may set to name itself in the audit log.
const ACTOR_HEADER: &str = "x-churn-actor";
/// The cookie the console's login form sets: the token, hex-encoded so that any token fits.
pub const TOKEN_COOKIE: &str = "churnserve_token";

/// What a call needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Anyone: probes, metrics, health, reflection, the login form.
    Anyone,
    /// The read token, when one is set.
    Read,
    /// The write token, when one is set.
    Write,
}

/// Every gRPC method and the role it needs. A path not listed needs `Read`, so a method
/// added without an entry is never open to anyone.
const GRPC: &[(&str, Role)] = &[
    ("/churn.v1.ScoringService/Score", Role::Read),
    ("/churn.v1.ScoringService/ScoreBatch", Role::Read),
    ("/churn.v1.ScoringService/ScoreStream", Role::Read),
    ("/churn.v1.ScoringService/ScoreArrow", Role::Read),
    ("/churn.v1.ScoringService/Explain", Role::Read),
    ("/churn.v1.ScoringService/FeatureImportance", Role::Read),
    ("/churn.v1.ScoringService/Evaluate", Role::Read),
    ("/churn.v1.ScoringService/Compare", Role::Read),
    ("/churn.v1.ScoringService/SuggestThreshold", Role::Read),
    ("/churn.v1.ScoringService/ShadowStats", Role::Read),
    ("/churn.v1.RegistryService/RegisterModel", Role::Write),
    ("/churn.v1.RegistryService/GetModelVersion", Role::Read),
    ("/churn.v1.RegistryService/ListModels", Role::Read),
    ("/churn.v1.RegistryService/ListModelVersions", Role::Read),
    ("/churn.v1.RegistryService/SetAlias", Role::Write),
    ("/churn.v1.RegistryService/DeleteAlias", Role::Write),
    ("/churn.v1.RegistryService/ArchiveModelVersion", Role::Write),
    ("/churn.v1.RegistryService/UploadDataset", Role::Write),
    ("/churn.v1.RegistryService/ListEvaluations", Role::Read),
    ("/churn.v1.RegistryService/ListDatasets", Role::Read),
    ("/churn.v1.RegistryService/SetReferenceDataset", Role::Write),
    ("/churn.v1.RegistryService/SetThreshold", Role::Write),
    ("/churn.v1.RegistryService/SetShadow", Role::Write),
    ("/churn.v1.RegistryService/DeleteShadow", Role::Write),
    ("/churn.v1.RegistryService/ListAuditEvents", Role::Read),
    ("/churn.v1.RegistryService/SetTrafficSplit", Role::Write),
    ("/churn.v1.RegistryService/GetTrafficSplit", Role::Read),
    ("/churn.v1.MonitoringService/RecordOutcomes", Role::Write),
    (
        "/churn.v1.MonitoringService/RealizedPerformance",
        Role::Read,
    ),
    ("/churn.v1.MonitoringService/ExperimentReport", Role::Read),
    ("/inference.GRPCInferenceService/ServerLive", Role::Anyone),
    ("/inference.GRPCInferenceService/ServerReady", Role::Read),
    ("/inference.GRPCInferenceService/ModelReady", Role::Read),
    ("/inference.GRPCInferenceService/ServerMetadata", Role::Read),
    ("/inference.GRPCInferenceService/ModelMetadata", Role::Read),
    ("/inference.GRPCInferenceService/ModelInfer", Role::Read),
    (
        "/inference.GRPCInferenceService/RepositoryIndex",
        Role::Read,
    ),
    (
        "/inference.GRPCInferenceService/RepositoryModelLoad",
        Role::Write,
    ),
    (
        "/inference.GRPCInferenceService/RepositoryModelUnload",
        Role::Write,
    ),
];

/// gRPC services open to anyone: probes and clients discovering the API.
const GRPC_OPEN_SERVICES: &[&str] = &["/grpc.health.", "/grpc.reflection."];

/// Every HTTP route and the role it needs; a pattern ending in `*` covers every path under
/// it. A path not listed needs `Read`.
const HTTP: &[(&str, Role)] = &[
    ("/healthz", Role::Anyone),
    ("/readyz", Role::Anyone),
    ("/metrics", Role::Anyone),
    ("/console.css", Role::Anyone),
    ("/login", Role::Anyone),
    ("/v2/health/live", Role::Anyone),
    ("/v2*", Role::Read),
    ("/", Role::Read),
    ("/models/*", Role::Read),
];

/// The role a request path needs, by the tables above.
pub fn role(path: &str) -> Role {
    if GRPC_OPEN_SERVICES.iter().any(|open| path.starts_with(open)) {
        return Role::Anyone;
    }
    GRPC.iter()
        .chain(HTTP)
        .find(|(pattern, _)| match pattern.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == *pattern,
        })
        .map_or(Role::Read, |(_, role)| *role)
}

/// The tokens the server was started with.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub write_token: Option<Token>,
    pub read_token: Option<Token>,
}

impl Tokens {
    /// No token is set: everyone may do everything.
    pub fn is_open(&self) -> bool {
        self.write_token.is_none() && self.read_token.is_none()
    }

    /// Whether a request presenting `presented` (its bearer token, if any) may do what
    /// `role` allows; the error says what was missing or wrong.
    pub fn allow(&self, role: Role, presented: Option<&str>) -> Result<(), ServiceError> {
        let accepted: Vec<&str> = match role {
            Role::Anyone => Vec::new(),
            Role::Write => self.write_token.iter().map(Token::expose).collect(),
            Role::Read if self.read_token.is_none() => Vec::new(),
            Role::Read => [&self.read_token, &self.write_token]
                .into_iter()
                .flatten()
                .map(Token::expose)
                .collect(),
        };
        if accepted.is_empty() {
            return Ok(());
        }
        let what = match role {
            Role::Write => "registry writes",
            _ => "this call",
        };
        let presented = presented.ok_or_else(|| {
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

    /// The layer that checks every request against the tables; `refuse` renders a refusal
    /// in the protocol of the routes it wraps.
    pub fn layer<Body>(&self, refuse: Refuse<Body>) -> AccessLayer<Body> {
        AccessLayer {
            tokens: Arc::new(self.clone()),
            refuse,
        }
    }
}

/// Renders a refused request (its path and why) as a response of the wrapped protocol.
pub type Refuse<Body> = fn(&str, ServiceError) -> http::Response<Body>;

/// The bearer token of a request: its `authorization` header, or else the console's
/// cookie.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match bearer {
        Some(token) => Some(token.to_owned()),
        None if headers.contains_key(AUTHORIZATION) => None,
        None => cookie_token(headers),
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='))
        .and_then(unhex)
}

/// A token as the cookie carries it.
pub fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The tower layer that lets a request through only when its credentials allow the role
/// its path needs.
#[derive(Debug)]
pub struct AccessLayer<Body> {
    tokens: Arc<Tokens>,
    refuse: Refuse<Body>,
}

impl<Body> Clone for AccessLayer<Body> {
    fn clone(&self) -> Self {
        AccessLayer {
            tokens: Arc::clone(&self.tokens),
            refuse: self.refuse,
        }
    }
}

impl<S, Body> tower::Layer<S> for AccessLayer<Body> {
    type Service = Access<S, Body>;
    fn layer(&self, inner: S) -> Access<S, Body> {
        Access {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Access<S, Body> {
    inner: S,
    layer: AccessLayer<Body>,
}

impl<S: Clone, Body> Clone for Access<S, Body> {
    fn clone(&self) -> Self {
        Access {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, ReqBody, Body> tower::Service<http::Request<ReqBody>> for Access<S, Body>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Body: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // Without tokens every call is allowed: nothing to read on the hot path.
        if self.layer.tokens.is_open() {
            return Either::Left(self.inner.call(request));
        }
        let path = request.uri().path();
        let presented = presented_token(request.headers());
        match self.layer.tokens.allow(role(path), presented.as_deref()) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(refusal) => {
                let response = (self.layer.refuse)(path, refusal);
                Either::Right(std::future::ready(Ok(response)))
            }
        }
    }
}

/// A refusal on the gRPC port: the status in the trailers-only response.
pub fn grpc_refusal(_path: &str, refusal: ServiceError) -> http::Response<tonic::body::Body> {
    tonic::Status::from(refusal).into_http()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_needs_the_role_of_its_table_entry() {
        for (path, role_needed) in [
            ("/churn.v1.ScoringService/Score", Role::Read),
            ("/churn.v1.RegistryService/SetAlias", Role::Write),
            ("/churn.v1.MonitoringService/RecordOutcomes", Role::Write),
            ("/inference.GRPCInferenceService/ServerLive", Role::Anyone),
            (
                "/inference.GRPCInferenceService/RepositoryModelLoad",
                Role::Write,
            ),
            ("/grpc.health.v1.Health/Check", Role::Anyone),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Role::Anyone,
            ),
            ("/churn.v1.ScoringService/Invented", Role::Read),
            ("/metrics", Role::Anyone),
            ("/v2/health/live", Role::Anyone),
            ("/v2/health/ready", Role::Read),
            ("/v2/models/telco-churn/infer", Role::Read),
            ("/", Role::Read),
            ("/models/telco-churn/compare", Role::Read),
            ("/login", Role::Anyone),
            ("/anything-else", Role::Read),
        ] {
            assert_eq!(role(path), role_needed, "{path}");
        }
    }

    #[test]
    fn tokens_allow_by_role() {
        let tokens = Tokens {
            write_token: Some(Token::from("w")),
            read_token: Some(Token::from("r")),
        };
        assert!(tokens.allow(Role::Anyone, None).is_ok());
        assert!(tokens.allow(Role::Read, Some("r")).is_ok());
        assert!(tokens.allow(Role::Read, Some("w")).is_ok());
        assert!(tokens.allow(Role::Write, Some("w")).is_ok());
        assert!(matches!(
            tokens.allow(Role::Write, Some("r")),
            Err(ServiceError::PermissionDenied(_))
        ));
        assert!(matches!(
            tokens.allow(Role::Read, None),
            Err(ServiceError::Unauthenticated(_))
        ));
        let open = Tokens::default();
        assert!(open.allow(Role::Write, None).is_ok());
    }

    #[test]
    fn the_cookie_carries_any_token() {
        for token in ["plain", "with space; and=signs", "ünïcode"] {
            let mut headers = HeaderMap::new();
            let cookie = format!("other=1; {TOKEN_COOKIE}={}", hex(token));
            headers.insert(COOKIE, cookie.parse().expect("header"));
            assert_eq!(presented_token(&headers).as_deref(), Some(token));
            assert_eq!(unhex(&hex(token)).as_deref(), Some(token));
        }
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("abc"), None);
    }
}
