//! The web console on the HTTP port: read-only pages of the registry, the evaluations and
//! their curves, two versions compared, drift and shadows. Each handler makes one call to
//! `domain::views` and renders it (the access layer in front checks the read token: a
//! bearer header, or the cookie the login form sets) (`pages.rs`, charts in `charts.rs`). Pages carry no
//! script and load nothing but `/console.css`, which the binary embeds.

mod charts;
mod experiments;
mod monitoring;
mod pages;
mod profit;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::access::{self, Role, TOKEN_COOKIE, Tokens};
use crate::api::status::http_status;
use crate::domain::ProfitParameters;
use crate::domain::error::ServiceError;
use crate::domain::views::{CompareRequest, Views};

const STYLESHEET: &str = include_str!("console/console.css");
/// No script, no frame, nothing from elsewhere: an injected tag could do nothing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, Clone)]
pub struct ConsoleState {
    pub views: Arc<Views>,
    /// For the login form, which checks the token it is given.
    pub tokens: Tokens,
}

pub fn routes(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(models))
        .route("/console.css", get(stylesheet))
        .route("/login", get(login_form).post(login))
        .route("/models/{name}", get(model))
        .route("/models/{name}/versions/{version}", get(version))
        .route("/models/{name}/compare", get(compare))
        .route("/models/{name}/monitoring", get(monitoring))
        .route("/models/{name}/experiments/{alias}", get(experiment))
        .with_state(state)
}

/// A page that could not be shown: its status and why.
#[derive(Debug)]
struct ConsoleError {
    status: StatusCode,
    message: String,
    /// Where the login form sends the reader back to, when a token is what is missing.
    login_next: Option<String>,
}

impl ConsoleError {
    fn bad_request(message: String) -> ConsoleError {
        ConsoleError {
            status: StatusCode::BAD_REQUEST,
            message,
            login_next: None,
        }
    }
}

impl From<ServiceError> for ConsoleError {
    fn from(error: ServiceError) -> ConsoleError {
        let status = tonic::Status::from(error);
        ConsoleError {
            status: http_status(status.code()),
            message: status.message().to_owned(),
            login_next: None,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = html! {
            p.error { (self.message) }
            @if let Some(next) = &self.login_next { (login_markup(next)) }
            p { a href="/" { "All models" } }
        };
        page(self.status, pages::layout(&title, &[], body))
    }
}

type PageResult = Result<Response, ConsoleError>;

fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A page the access layer refused: the error, and the login form that sends the reader
/// back to `path`.
pub fn refusal(path: &str, refusal: ServiceError) -> Response {
    ConsoleError {
        login_next: Some(local_path(path)),
        ..ConsoleError::from(refusal)
    }
    .into_response()
}

fn login_markup(next: &str) -> Markup {
    html! {
        form.login method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label { "Read token " input type="password" name="token" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Login {
    token: String,
    #[serde(default)]
    next: String,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    page(
        StatusCode::OK,
        pages::layout("Sign in", &[], login_markup(&local_path(&query.next))),
    )
}

/// Sets the token cookie when the token may read, then returns to the page asked for.
async fn login(State(state): State<ConsoleState>, Form(login): Form<Login>) -> PageResult {
    let next = local_path(&login.next);
    state
        .tokens
        .allow(Role::Read, Some(&login.token))
        .map_err(|error| ConsoleError {
            login_next: Some(next.clone()),
            ..ConsoleError::from(error)
        })?;
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        access::hex(&login.token)
    );
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, next), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

/// `next` when it is a path on this server, else `/`: the form never sends a reader away.
fn local_path(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if local { next } else { "/" }.to_owned()
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

async fn models(State(state): State<ConsoleState>) -> PageResult {
    let view = state.views.models().await?;
    Ok(page(StatusCode::OK, pages::models(&view)))
}

#[derive(Debug, Deserialize)]
struct ModelQuery {
    before: Option<String>,
}

async fn model(
    State(state): State<ConsoleState>,
    Path(name): Path<String>,
    Query(query): Query<ModelQuery>,
) -> PageResult {
    let before = query
        .before
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                ConsoleError::bad_request(format!(
                    "before: expected an audit entry id, got {text:?}"
                ))
            })
        })
        .transpose()?;
    let view = state.views.model(&name, before).await?;
    Ok(page(StatusCode::OK, pages::model(&view)))
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    evaluation: Option<String>,
}

/// A version number from the path or the query: 1 or more.
fn version_number(field: &str, text: &str) -> Result<u32, ConsoleError> {
    match text.parse::<u32>() {
        Ok(0) => Err(ConsoleError {
            status: StatusCode::NOT_FOUND,
            message: format!("{field}: versions are numbered from 1; there is no version 0"),
            login_next: None,
        }),
        Ok(number) => Ok(number),
        Err(_) => Err(ConsoleError::bad_request(format!(
            "{field}: expected a version number, got {text:?}"
        ))),
    }
}

async fn version(
    State(state): State<ConsoleState>,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
) -> PageResult {
    let number = version_number("version", &version)?;
    let view = state.views.version(&name, number).await?;
    let chosen = match &query.evaluation {
        None => view.evaluations.first(),
        Some(id) => Some(
            view.evaluations
                .iter()
                .find(|e| &e.record.evaluation_id == id)
                .ok_or_else(|| ConsoleError {
                    status: StatusCode::NOT_FOUND,
                    message: format!("evaluation {id:?} is not an evaluation of this version"),
                    login_next: None,
                })?,
        ),
    };
    Ok(page(StatusCode::OK, pages::version(&view, chosen)))
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    champion: Option<String>,
    challenger: Option<String>,
    dataset: Option<String>,
    clv: Option<String>,
    incentive_cost: Option<String>,
    contact_cost: Option<String>,
    acceptance_alpha: Option<String>,
    acceptance_beta: Option<String>,
}

impl CompareQuery {
    /// The campaign the form asks for, its blank fields at their defaults.
    fn campaign(&self) -> Result<ProfitParameters, ConsoleError> {
        let value = |field: &str, text: &Option<String>| match text.as_deref().map(str::trim) {
            None | Some("") => Ok(0.0),
            Some(text) => text.parse::<f64>().map_err(|_| {
                ConsoleError::bad_request(format!("{field}: expected a number, got {text:?}"))
            }),
        };
        let campaign = ProfitParameters {
            clv: value("clv", &self.clv)?,
            incentive_cost: value("incentive_cost", &self.incentive_cost)?,
            contact_cost: value("contact_cost", &self.contact_cost)?,
            acceptance_alpha: value("acceptance_alpha", &self.acceptance_alpha)?,
            acceptance_beta: value("acceptance_beta", &self.acceptance_beta)?,
        }
        .or_defaults();
        campaign
            .validate()
            .map_err(|error| ConsoleError::bad_request(error.to_string()))?;
        Ok(campaign)
    }
}

async fn compare(
    State(state): State<ConsoleState>,
    Path(name): Path<String>,
    Query(query): Query<CompareQuery>,
) -> PageResult {
    let number = |field: &str, text: &Option<String>| {
        text.as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| version_number(field, t))
            .transpose()
    };
    let request = CompareRequest {
        champion: number("champion", &query.champion)?,
        challenger: number("challenger", &query.challenger)?,
        campaign: query.campaign()?,
        dataset: query.dataset,
    };
    let view = state.views.compare(&name, request).await?;
    Ok(page(StatusCode::OK, pages::compare(&view)))
}

async fn monitoring(State(state): State<ConsoleState>, Path(name): Path<String>) -> PageResult {
    let view = state.views.monitoring(&name).await?;
    Ok(page(StatusCode::OK, monitoring::monitoring(&view)))
}

async fn experiment(
    State(state): State<ConsoleState>,
    Path((name, alias)): Path<(String, String)>,
) -> PageResult {
    let report = state.views.experiment(&name, &alias).await?;
    Ok(page(StatusCode::OK, experiments::experiment(&report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_form_returns_only_to_this_server() {
        assert_eq!(local_path("/models/a?b=1"), "/models/a?b=1");
        for away in [
            "https://elsewhere.example",
            "//elsewhere.example",
            "/\\elsewhere",
            "",
            "/a\r\nSet-Cookie: x",
        ] {
            assert_eq!(local_path(away), "/", "{away}");
        }
    }
}
