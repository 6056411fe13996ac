//! `alias set` and `alias delete`; a move can be gated on labelled data.

use churn_api::v1 as pb;
use clap::Subcommand;

use super::models::versions_table;
use crate::args::key_value;
use crate::output::Format;
use crate::reference::ModelArg;
use crate::session::{Session, status};

#[derive(Debug, Subcommand)]
pub(crate) enum AliasCommand {
    /// Point ALIAS at a version, loaded and checked first: `alias set models:/NAME/VERSION
    /// ALIAS` or `alias set NAME ALIAS VERSION`.
    Set {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        alias: String,
        version: Option<u32>,
        /// Move only if VERSION passes on labelled data:
        /// `dataset=D[,min_roc_auc=X][,max_roc_auc_drop=Y]` (the drop against the version
        /// holding ALIAS now).
        #[arg(long, value_parser = gate_spec)]
        gate: Option<pb::PromotionGate>,
    },
    /// Remove ALIAS.
    Delete {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        alias: String,
    },
}

pub(crate) async fn alias(
    session: &Session,
    command: AliasCommand,
    format: Format,
) -> anyhow::Result<()> {
    match command {
        AliasCommand::Set {
            model,
            alias,
            version,
            gate,
        } => {
            let (name, version) = model.exact(version)?;
            let request = pb::SetAliasRequest {
                name,
                alias,
                version,
                gate,
            };
            let version = session
                .registry()
                .set_alias(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            versions_table(std::slice::from_ref(&version)).print(format);
        }
        AliasCommand::Delete { model, alias } => {
            let name = model.name_only()?;
            let request = pb::DeleteAliasRequest {
                name: name.clone(),
                alias: alias.clone(),
            };
            session
                .registry()
                .delete_alias(session.request(request)?)
                .await
                .map_err(status)?;
            eprintln!("deleted alias {alias} of {name}");
        }
    }
    Ok(())
}

fn gate_spec(text: &str) -> Result<pb::PromotionGate, String> {
    let mut gate = pb::PromotionGate::default();
    for part in text.split(',') {
        let (key, value) = key_value(part)?;
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{key}={value:?} is not a number"))
        };
        match key.as_str() {
            "dataset" => gate.dataset = value,
            "min_roc_auc" => gate.min_roc_auc = Some(number()?),
            "max_roc_auc_drop" => gate.max_roc_auc_drop = Some(number()?),
            other => {
                return Err(format!(
                    "unknown gate key {other:?}; expected dataset, min_roc_auc, max_roc_auc_drop"
                ));
            }
        }
    }
    Ok(gate)
}
