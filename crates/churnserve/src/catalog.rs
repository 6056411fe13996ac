//! The models the server can answer with, and how a request's model reference resolves
//! to one version. Until the registry lands, these are the bundled models, each served
//! as version 1 under the alias `production`.

use std::collections::BTreeMap;
use std::sync::Arc;

use churn_engine::{EngineError, Model, ModelOptions, OnnxRuntime};
use sha2::{Digest, Sha256};

/// The alias a reference with neither version nor alias means.
pub const PRODUCTION_ALIAS: &str = "production";

/// The models shipped inside the binary, trained by models/train.py.
const BUNDLED: &[(&str, &[u8])] = &[
    (
        "telco-logreg",
        include_bytes!("../../../models/telco-logreg.onnx"),
    ),
    (
        "telco-lgbm",
        include_bytes!("../../../models/telco-lgbm.onnx"),
    ),
];

/// One loaded model version and the identity it answers with.
#[derive(Debug)]
pub struct ServedModel {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub model: Model,
}

/// Which model a request asks for, already checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelector {
    /// Empty: the default model.
    pub name: String,
    pub version: VersionSelector,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    Number(u32),
    Alias(String),
}

/// A reference that names nothing the server has.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("model {0:?} not found")]
    UnknownModel(String),
    #[error("model {name:?} has no version {version}")]
    UnknownVersion { name: String, version: u32 },
    #[error("model {name:?} has no alias {alias:?}")]
    UnknownAlias { name: String, alias: String },
    #[error("bundled model {name:?}: {source}")]
    Load { name: String, source: EngineError },
}

/// The loaded models by name.
#[derive(Debug)]
pub struct Catalog {
    default_model: String,
    models: BTreeMap<String, Arc<ServedModel>>,
}

impl Catalog {
    /// Loads every bundled model. Blocking: ONNX Runtime builds its sessions here.
    pub fn bundled(
        runtime: &OnnxRuntime,
        default_model: &str,
        options: &ModelOptions,
    ) -> Result<Catalog, CatalogError> {
        let mut models = BTreeMap::new();
        for &(name, bytes) in BUNDLED {
            let model =
                Model::load(runtime, bytes, options).map_err(|source| CatalogError::Load {
                    name: name.to_owned(),
                    source,
                })?;
            let served = ServedModel {
                name: name.to_owned(),
                version: 1,
                sha256: hex_sha256(bytes),
                model,
            };
            tracing::info!(model = name, version = 1, sha256 = %served.sha256, "model loaded");
            models.insert(name.to_owned(), Arc::new(served));
        }
        if !models.contains_key(default_model) {
            return Err(CatalogError::UnknownModel(default_model.to_owned()));
        }
        Ok(Catalog {
            default_model: default_model.to_owned(),
            models,
        })
    }

    pub fn resolve(&self, selector: &ModelSelector) -> Result<Arc<ServedModel>, CatalogError> {
        let name = if selector.name.is_empty() {
            &self.default_model
        } else {
            &selector.name
        };
        let served = self
            .models
            .get(name)
            .ok_or_else(|| CatalogError::UnknownModel(name.clone()))?;
        match &selector.version {
            VersionSelector::Number(version) if *version == served.version => {
                Ok(Arc::clone(served))
            }
            VersionSelector::Number(version) => Err(CatalogError::UnknownVersion {
                name: name.clone(),
                version: *version,
            }),
            VersionSelector::Alias(alias) if alias == PRODUCTION_ALIAS => Ok(Arc::clone(served)),
            VersionSelector::Alias(alias) => Err(CatalogError::UnknownAlias {
                name: name.clone(),
                alias: alias.clone(),
            }),
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
