//! Arguments several commands share: which version (`Target`) and `name=value` pairs.

use churn_api::v1 as pb;
use clap::Args;

use crate::reference::ModelArg;

/// Which version: NAME, NAME@ALIAS, NAME/VERSION, models:/NAME@ALIAS or
/// models:/NAME/VERSION, or the flags; `production` by default.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The model; empty: the server's default model.
    #[arg(value_name = "MODEL", default_value = "")]
    pub(crate) model: ModelArg,
    /// Exact version (same as MODEL/VERSION).
    #[arg(long, conflicts_with = "alias")]
    pub(crate) version: Option<u32>,
    /// Alias, such as `production` or `challenger` (same as MODEL@ALIAS).
    #[arg(long)]
    pub(crate) alias: Option<String>,
}

impl Target {
    pub(crate) fn model_ref(&self) -> anyhow::Result<Option<pb::ModelRef>> {
        let model = self.model.with_flags(self.version, self.alias.as_deref())?;
        Ok(Some(model.to_proto()))
    }
}

pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not name=value"))
}
