//! The command line: global flags and the commands.

use clap::{Parser, Subcommand};

use crate::args::{Campaign, Target};
use crate::commands::alias::AliasCommand;
use crate::commands::datasets::DatasetsCommand;
use crate::commands::evaluate::Compare;
use crate::commands::explain::{Explain, Importance};
use crate::commands::register::Register;
use crate::commands::score::Score;
use crate::commands::{drift, experiment, outcomes, score_file, shadow};
use crate::output::Format;
use crate::reference::ModelArg;
use crate::session::Connection;

/// Command-line client for churnserve: register and promote churn models, inspect them,
/// upload datasets, and score customers.
///
/// A model is named the same way everywhere: NAME (its `production` alias), NAME@ALIAS,
/// NAME/VERSION, or models:/NAME@ALIAS and models:/NAME/VERSION.
#[derive(Debug, Parser)]
#[command(name = "churnctl", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// How to print results.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub(crate) output: Format,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the registered models and their aliases.
    Models,
    /// List the versions of a model.
    Versions {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        /// Include archived versions.
        #[arg(long)]
        all: bool,
    },
    /// Show one version and its input schema.
    Show(Target),
    /// Register an ONNX file as the next version of a model.
    Register(Register),
    /// Move or delete an alias.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Shadow an alias with another version on live traffic, stop it, or see how the two
    /// agree.
    #[command(subcommand)]
    Shadow(shadow::ShadowCommand),
    /// Split an alias between versions (each customer always answered by the same one),
    /// see how each arm's customers turned out, or end the split.
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// Archive a version (refused while an alias points at it): `archive models:/NAME/VERSION`
    /// or `archive NAME VERSION`.
    Archive {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        version: Option<u32>,
    },
    /// Upload or list labelled CSV datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Score customers: `--set name=value` flags, or JSON (one object, or an array scored
    /// as one batch) from a file or standard input.
    ///
    /// A JSON customer is {"customer_id": "...", "features": {"tenure": 12, "contract":
    /// "One year", "totalcharges": null, ...}}: numbers, text, true/false, or null for a
    /// missing number.
    Score(Score),
    /// Score a CSV or Parquet file of customers through one pinned version into a CSV or
    /// Parquet file of scores; rejected rows go to a side file; `--resume` continues an
    /// interrupted job exactly where it stopped.
    ScoreFile(score_file::ScoreFile),
    /// Explain one customer's score: each raw feature's contribution in log-odds.
    Explain(Explain),
    /// Global importance of each raw feature.
    Importance(Importance),
    /// Evaluate a version on a registered labelled dataset; the result is stored.
    Evaluate {
        #[command(flatten)]
        target: Target,
        /// A registered labelled dataset.
        #[arg(long)]
        dataset: String,
        /// Decision threshold; default: the version's.
        #[arg(long, default_value_t = 0.0)]
        threshold: f64,
        #[command(flatten)]
        campaign: Campaign,
    },
    /// List the stored evaluations of a model (of one version: models:/NAME/VERSION or
    /// --version), newest first.
    Evaluations {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        /// Only this version's.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Evaluate two versions on the same rows, side by side, with DeLong's test of their
    /// ROC AUC difference.
    Compare(Compare),
    /// Suggest a decision threshold from a labelled dataset.
    Threshold {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        dataset: String,
        /// `f1`, `recall@precision=X`, `top-k=N`, or `profit` (contact the fraction of
        /// customers that makes the campaign below pay most).
        #[arg(long, default_value = "f1")]
        objective: String,
        #[command(flatten)]
        campaign: Campaign,
    },
    /// Change the threshold a version predicts churn at (audited; serving follows at once):
    /// `set-threshold models:/NAME/VERSION THRESHOLD` or `set-threshold NAME VERSION THRESHOLD`.
    SetThreshold {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        #[arg(value_name = "[VERSION] THRESHOLD", num_args = 1..=2, required = true)]
        values: Vec<String>,
    },
    /// Name the dataset a version is explained against; an empty name clears it:
    /// `set-reference models:/NAME/VERSION DATASET` or `set-reference NAME VERSION DATASET`.
    SetReference {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        #[arg(value_name = "[VERSION] DATASET", num_args = 1..=2, required = true)]
        values: Vec<String>,
    },
    /// Record what became of customers (delayed outcomes), from a CSV file.
    #[command(subcommand)]
    Outcomes(outcomes::OutcomesCommand),
    /// How good a version's predictions turned out, cohort by cohort: realized metrics over
    /// the outcomes recorded, and the estimate the probabilities make without them.
    Performance(outcomes::Performance),
    /// How far the rows a version scored on every replica have moved from its reference
    /// dataset: the population stability index of each feature and of the probability.
    Drift(drift::Drift),
    /// Who changed what, when: the registry's audit log, newest first.
    Audit {
        /// Only the changes of this model or dataset.
        #[arg(value_name = "NAME", default_value = "")]
        name: String,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only events older than this id (the last column of the previous page).
        #[arg(long)]
        before: Option<u64>,
    },
    /// Print a shell completion script: `churnctl completions bash > /etc/bash_completion.d/churnctl`,
    /// or `source <(churnctl completions zsh)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}
