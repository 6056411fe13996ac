//! A loaded model version and the names a request picks one by.

use std::sync::{Arc, Mutex};

use churn_engine::Model;
use churn_explain::Background;
use churn_registry::VersionRef;

/// The alias a reference with neither version nor alias means.
const PRODUCTION_ALIAS: &str = "production";

/// The alias a request means: the one it names, or `production`.
pub fn alias_or_production(alias: &str) -> &str {
    if alias.is_empty() {
        PRODUCTION_ALIAS
    } else {
        alias
    }
}

/// One loaded model version and the identity it answers with.
#[derive(Debug)]
pub struct ServedModel {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub model: Model,
    /// The scored background of its reference dataset, once an explanation needed it.
    pub background: Mutex<Option<CachedBackground>>,
}

/// A background and what it was built from.
#[derive(Debug, Clone)]
pub struct CachedBackground {
    /// The registry generation at which the version's reference was last read.
    pub generation: i64,
    pub dataset_sha256: String,
    pub background: Arc<Background>,
}

impl ServedModel {
    pub(super) fn new(name: String, version: u32, sha256: String, model: Model) -> ServedModel {
        ServedModel {
            name,
            version,
            sha256,
            model,
            background: Mutex::new(None),
        }
    }
}

/// Which model a request asks for, already checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelector {
    /// Empty: the default model.
    pub name: String,
    pub version: VersionRef,
}

impl ModelSelector {
    /// The version holding `alias` of model `name`; an empty alias means `production`,
    /// an empty name the default model.
    pub fn by_alias(name: impl Into<String>, alias: &str) -> ModelSelector {
        ModelSelector {
            name: name.into(),
            version: VersionRef::Alias(alias_or_production(alias).to_owned()),
        }
    }

    /// Version `version` of model `name`; an empty name means the default model.
    pub fn by_number(name: impl Into<String>, version: u32) -> ModelSelector {
        ModelSelector {
            name: name.into(),
            version: VersionRef::Number(version),
        }
    }
}
