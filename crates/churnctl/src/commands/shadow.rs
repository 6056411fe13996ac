//! `churnctl shadow`: run a version beside an alias on live traffic and see how the two
//! agree before promoting it.

use anyhow::bail;
use churn_api::v1 as pb;
use clap::Subcommand;
use serde_json::json;

use crate::output::{Format, Table};
use crate::reference::ModelArg;
use crate::session::{Session, status};

#[derive(Debug, Subcommand)]
pub enum ShadowCommand {
    /// Score everything ALIAS serves (Score, ScoreBatch) also with a version, off the
    /// request path: `shadow set models:/NAME/VERSION ALIAS` or `shadow set NAME ALIAS VERSION`.
    Set {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        alias: String,
        version: Option<u32>,
        /// Keep each (customer id, served score, shadow score) in the registry.
        #[arg(long)]
        record: bool,
    },
    /// Stop the shadow of ALIAS.
    Delete {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        alias: String,
    },
    /// How the shadow agrees with what an alias serves: `shadow stats models:/NAME@ALIAS`
    /// or `shadow stats NAME ALIAS`.
    Stats {
        /// The model; empty: the server's default model.
        #[arg(value_name = "MODEL", default_value = "")]
        model: ModelArg,
        /// Alias; default `production`.
        alias: Option<String>,
    },
}

pub async fn shadow(
    session: &Session,
    command: ShadowCommand,
    format: Format,
) -> anyhow::Result<()> {
    match command {
        ShadowCommand::Set {
            model,
            alias,
            version,
            record,
        } => {
            let (name, version) = model.exact(version)?;
            let request = pb::SetShadowRequest {
                name,
                alias,
                version,
                record,
            };
            let shadow = session
                .registry()
                .set_shadow(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let mut table = Table::new(&["MODEL", "ALIAS", "SHADOW VERSION", "RECORD"]);
            table.row(vec![
                json!(shadow.name),
                json!(shadow.alias),
                json!(shadow.version),
                json!(shadow.record),
            ]);
            table.print(format);
        }
        ShadowCommand::Delete { model, alias } => {
            let name = model.name_only()?;
            let request = pb::DeleteShadowRequest {
                name: name.clone(),
                alias: alias.clone(),
            };
            session
                .registry()
                .delete_shadow(session.request(request)?)
                .await
                .map_err(status)?;
            eprintln!("stopped the shadow of {name} {alias}");
        }
        ShadowCommand::Stats { model, alias } => {
            let model = model.with_flags(None, alias.as_deref())?;
            if model.version.is_some() {
                bail!("{model}: a shadow belongs to an alias; name it as models:/NAME@ALIAS");
            }
            let request = pb::ShadowStatsRequest {
                name: model.name,
                alias: model.alias.unwrap_or_default(),
            };
            let stats = session
                .scoring()
                .shadow_stats(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let shadow = stats.shadow.unwrap_or_default();
            let mut table = Table::new(&["STATISTIC", "VALUE"]);
            for (statistic, value) in [
                ("model", json!(shadow.name)),
                ("alias", json!(shadow.alias)),
                ("shadow_version", json!(shadow.version)),
                ("compared", json!(stats.compared)),
                ("dropped", json!(stats.dropped)),
                ("failed", json!(stats.failed)),
                ("recorded", json!(stats.recorded)),
                ("mean_difference", json!(stats.mean_difference)),
                ("mean_abs_difference", json!(stats.mean_abs_difference)),
                ("p50_abs_difference", json!(stats.p50_abs_difference)),
                ("p90_abs_difference", json!(stats.p90_abs_difference)),
                ("p99_abs_difference", json!(stats.p99_abs_difference)),
                ("max_abs_difference", json!(stats.max_abs_difference)),
                ("label_agreement", json!(stats.label_agreement)),
                ("both_churn", json!(stats.both_churn)),
                ("served_only_churn", json!(stats.served_only_churn)),
                ("shadow_only_churn", json!(stats.shadow_only_churn)),
                ("neither_churn", json!(stats.neither_churn)),
                ("rank_correlation", json!(stats.rank_correlation)),
                ("rank_window", json!(stats.rank_window)),
            ] {
                table.row(vec![json!(statistic), value]);
            }
            table.print(format);
        }
    }
    Ok(())
}
