//! `churnctl`: the command-line client of churnserve for ML engineers and scripts. It
//! talks to the server through the public gRPC API only, so everything it does a client
//! author can do too.

mod outcomes;
mod output;
mod reference;
mod score_file;
mod shadow;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::{Value, json};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use output::{Format, Table, line, progress_bar, utc_of};
use reference::ModelArg;

const UPLOAD_CHUNK: usize = 256 * 1024;

// score-file parses on one thread and frees on another; mimalloc handles that several
// times faster than glibc's allocator (measured with perf on a 200,000-row file).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line client for churnserve: register and promote churn models, inspect them,
/// upload datasets, and score customers.
///
/// A model is named the same way everywhere: NAME (its `production` alias), NAME@ALIAS,
/// NAME/VERSION, or models:/NAME@ALIAS and models:/NAME/VERSION.
#[derive(Debug, Parser)]
#[command(name = "churnctl", version)]
struct Cli {
    /// The server's address: http://HOST:PORT, https://HOST:PORT (TLS, checked against the
    /// platform's root certificates or --ca-cert), or HOST:PORT.
    #[arg(
        long,
        env = "CHURNSERVE_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    server: String,
    /// PEM file of the certificate authority that signed the server's certificate
    /// (implies TLS).
    #[arg(long, env = "CHURNSERVE_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// PEM file of a client certificate, for servers that require one (mutual TLS).
    #[arg(
        long,
        env = "CHURNSERVE_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(
        long,
        env = "CHURNSERVE_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    client_key: Option<PathBuf>,
    /// Bearer token sent with every call (the server's write or read token).
    #[arg(long, env = "CHURNSERVE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// How to print results.
    #[arg(long, value_enum, default_value = "table", global = true)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
        /// `f1`, `recall@precision=X` or `top-k=N`.
        #[arg(long, default_value = "f1")]
        objective: String,
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

/// Which version: NAME, NAME@ALIAS, NAME/VERSION, models:/NAME@ALIAS or
/// models:/NAME/VERSION, or the flags; `production` by default.
#[derive(Debug, Args)]
struct Target {
    /// The model; empty: the server's default model.
    #[arg(value_name = "MODEL", default_value = "")]
    model: ModelArg,
    /// Exact version (same as MODEL/VERSION).
    #[arg(long, conflicts_with = "alias")]
    version: Option<u32>,
    /// Alias, such as `production` or `challenger` (same as MODEL@ALIAS).
    #[arg(long)]
    alias: Option<String>,
}

impl Target {
    fn model_ref(&self) -> anyhow::Result<Option<pb::ModelRef>> {
        let model = self.model.with_flags(self.version, self.alias.as_deref())?;
        Ok(Some(model.to_proto()))
    }
}

/// The version and the value of `set-threshold` and `set-reference`: `[VERSION] VALUE`
/// after the model, the version from the reference when only the value is given.
fn version_and_value(model: &ModelArg, values: &[String]) -> anyhow::Result<(String, u32, String)> {
    let (version, value) = match values {
        [value] => (None, value),
        [version, value] => (
            Some(
                version
                    .parse::<u32>()
                    .with_context(|| format!("VERSION {version:?} is not a version number"))?,
            ),
            value,
        ),
        _ => bail!("expected [VERSION] VALUE after the model"),
    };
    let (name, version) = model.exact(version)?;
    Ok((name, version, value.clone()))
}

#[derive(Debug, Args)]
struct Register {
    /// The ONNX file.
    file: PathBuf,
    /// Model name; the version number is the next one of this name.
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// A tag, `key=value`; repeatable.
    #[arg(long = "tag", value_parser = key_value)]
    tags: Vec<(String, String)>,
    /// Column names of a dense `[N,F]` input, comma-separated, when the file does not carry them.
    #[arg(long, value_delimiter = ',')]
    feature_names: Vec<String>,
    /// The class label counted as churn; default: the last class.
    #[arg(long, default_value = "")]
    positive_class: String,
    /// Decision threshold; default: the model's own metadata, else 0.5.
    #[arg(long, default_value_t = 0.0)]
    threshold: f64,
    /// Risk band cut points `medium,high`; default 0.3,0.6.
    #[arg(long, value_delimiter = ',')]
    risk_band_cuts: Vec<f64>,
    /// A registered dataset to use as reference.
    #[arg(long, default_value = "")]
    reference_dataset: String,
    /// Point this alias at the new version once it is valid; repeatable.
    #[arg(long = "alias")]
    aliases: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum AliasCommand {
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

#[derive(Debug, Subcommand)]
enum DatasetsCommand {
    /// Upload a CSV file with a header row.
    Upload {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// The column holding the outcome.
        #[arg(long)]
        label_column: String,
        /// The label value that means churned.
        #[arg(long)]
        positive_label: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the datasets.
    List,
}

#[derive(Debug, Args)]
struct Score {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    input: CustomerInput,
    /// Also return each customer's N largest reasons (needs the version's reference dataset).
    #[arg(long, default_value_t = 0)]
    top_reasons: u32,
}

/// Customers from `--set` flags or JSON.
#[derive(Debug, Args)]
struct CustomerInput {
    /// One feature, `name=value` (a number, true/false, empty for missing, else text); repeatable.
    #[arg(long = "set", value_parser = key_value, conflicts_with = "customers")]
    features: Vec<(String, String)>,
    /// Customer id when scoring from `--set` flags.
    #[arg(long, default_value = "")]
    customer_id: String,
    /// JSON file with the customers; `-` reads standard input.
    #[arg(long)]
    customers: Option<String>,
}

impl CustomerInput {
    /// The JSON customers: one object, or an array.
    fn read(self) -> anyhow::Result<Value> {
        if self.features.is_empty() {
            let source = self.customers.as_deref().unwrap_or("-");
            return serde_json::from_str(&read_input(source)?)
                .context("customers are not valid JSON");
        }
        let features: serde_json::Map<String, Value> = self
            .features
            .into_iter()
            .map(|(name, value)| (name, flag_value(&value)))
            .collect();
        Ok(json!({"customer_id": self.customer_id, "features": features}))
    }
}

#[derive(Debug, Args)]
struct Explain {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    input: CustomerInput,
}

#[derive(Debug, Args)]
struct Compare {
    #[arg(value_name = "MODEL")]
    model: ModelArg,
    #[arg(long)]
    dataset: String,
    /// Champion and challenger versions, `A,B`.
    #[arg(long, value_delimiter = ',', num_args = 2, conflicts_with = "aliases")]
    versions: Vec<u32>,
    /// Champion and challenger aliases, `A,B`.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 2,
        default_value = "production,challenger"
    )]
    aliases: Vec<String>,
}

impl Compare {
    fn models(&self) -> anyhow::Result<(Option<pb::ModelRef>, Option<pb::ModelRef>)> {
        let name = self.model.name_only()?;
        let by = |i: usize| {
            Some(pb::ModelRef {
                name: name.clone(),
                version: self.versions.get(i).copied().unwrap_or(0),
                alias: if self.versions.is_empty() {
                    self.aliases[i].clone()
                } else {
                    String::new()
                },
            })
        };
        Ok((by(0), by(1)))
    }
}

#[derive(Debug, Args)]
struct Importance {
    #[command(flatten)]
    target: Target,
    /// How importance is measured; default: the server picks (native for trees, else permutation).
    #[arg(long, value_enum)]
    method: Option<ImportanceMethod>,
    /// A registered labelled dataset; default: the version's reference dataset.
    #[arg(long, default_value = "")]
    dataset: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ImportanceMethod {
    /// Split counts of a tree ensemble.
    Native,
    /// Drop in ROC AUC when a feature is shuffled.
    Permutation,
    /// Mean absolute attribution.
    MeanAbsShap,
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

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not name=value"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        print_completions(shell);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("churnctl: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("churnctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A connection with the caller's token and name attached to every call.
struct Session {
    channel: Channel,
    token: Option<String>,
    actor: String,
}

impl Session {
    fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .context("the token is not a valid header value")?;
            request.metadata_mut().insert("authorization", value);
        }
        if let Ok(actor) = self.actor.parse() {
            request.metadata_mut().insert("x-churn-actor", actor);
        }
        Ok(request)
    }

    fn registry(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channel.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
    }

    fn scoring(&self) -> ScoringServiceClient<Channel> {
        ScoringServiceClient::new(self.channel.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }
}

/// The completion script for `shell`, generated from the command definitions.
fn print_completions(shell: clap_complete::Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "churnctl",
        &mut std::io::stdout(),
    );
}

/// The server's endpoint: TLS for `https://` or with a CA given, with the client
/// certificate when one is given.
fn endpoint(cli: &Cli) -> anyhow::Result<Endpoint> {
    let tls = cli.server.starts_with("https://") || cli.ca_cert.is_some();
    let host = ["https://", "http://"]
        .iter()
        .find_map(|scheme| cli.server.strip_prefix(scheme))
        .unwrap_or(&cli.server);
    let scheme = if tls { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{host}")).with_context(|| {
        format!(
            "{:?} is not a server address such as http://127.0.0.1:50051",
            cli.server
        )
    })?;
    if !tls {
        if cli.client_cert.is_some() {
            bail!("--client-cert needs TLS: use an https:// address");
        }
        return Ok(endpoint);
    }
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
    };
    let mut config = ClientTlsConfig::new();
    config = match &cli.ca_cert {
        Some(path) => config.ca_certificate(Certificate::from_pem(read(path, "CA certificate")?)),
        None => config.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&cli.client_cert, &cli.client_key) {
        config = config.identity(Identity::from_pem(
            read(cert, "client certificate")?,
            read(key, "client key")?,
        ));
    }
    endpoint
        .tls_config(config)
        .context("the TLS settings are not usable")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let channel = endpoint(&cli)?.connect().await.map_err(|error| {
        // tonic's transport error says only "transport error"; its sources say why.
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        anyhow::anyhow!("cannot connect to {}: {reason}", cli.server)
    })?;
    let actor = format!(
        "churnctl:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
    );
    let session = Session {
        channel,
        token: cli.token,
        actor,
    };
    let format = cli.output;
    match cli.command {
        Command::Models => {
            let models = session
                .registry()
                .list_models(session.request(pb::ListModelsRequest {})?)
                .await
                .map_err(status)?;
            let mut table = Table::new(&["NAME", "LATEST", "ALIASES"]);
            for model in models.into_inner().models {
                let mut aliases: Vec<String> = model
                    .aliases
                    .iter()
                    .map(|(a, v)| format!("{a}={v}"))
                    .collect();
                aliases.sort();
                table.row(vec![
                    json!(model.name),
                    json!(model.latest_version),
                    json!(aliases),
                ]);
            }
            table.print(format);
        }
        Command::Versions { model, all } => {
            let request = pb::ListModelVersionsRequest {
                name: model.name_only()?,
                include_archived: all,
            };
            let versions = session
                .registry()
                .list_model_versions(session.request(request)?)
                .await
                .map_err(status)?;
            versions_table(&versions.into_inner().versions).print(format);
        }
        Command::Show(target) => {
            let request = pb::GetModelVersionRequest {
                model: target.model_ref()?,
            };
            let version = session
                .registry()
                .get_model_version(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            show(&version, format);
        }
        Command::Register(register) => {
            let version = register_model(&session, register).await?;
            versions_table(std::slice::from_ref(&version)).print(format);
        }
        Command::Alias(AliasCommand::Set {
            model,
            alias,
            version,
            gate,
        }) => {
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
        Command::Alias(AliasCommand::Delete { model, alias }) => {
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
        Command::Archive { model, version } => {
            let (name, version) = model.exact(version)?;
            let request = pb::ArchiveModelVersionRequest { name, version };
            let version = session
                .registry()
                .archive_model_version(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            versions_table(std::slice::from_ref(&version)).print(format);
        }
        Command::Datasets(DatasetsCommand::Upload {
            file,
            name,
            label_column,
            positive_label,
            description,
        }) => {
            let metadata = pb::DatasetMetadata {
                name,
                label_column,
                positive_label,
                description,
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let messages = upload_messages(&file, bytes, |chunk| pb::UploadDatasetRequest {
                part: Some(pb::upload_dataset_request::Part::CsvChunk(chunk)),
            });
            let first = pb::UploadDatasetRequest {
                part: Some(pb::upload_dataset_request::Part::Metadata(metadata)),
            };
            let stream = tokio_stream::iter(std::iter::once(first).chain(messages));
            let dataset = session
                .registry()
                .upload_dataset(session.request(stream)?)
                .await
                .map_err(status)?
                .into_inner();
            datasets_table(&[dataset]).print(format);
        }
        Command::Datasets(DatasetsCommand::List) => {
            let datasets = session
                .registry()
                .list_datasets(session.request(pb::ListDatasetsRequest {})?)
                .await
                .map_err(status)?;
            datasets_table(&datasets.into_inner().datasets).print(format);
        }
        Command::Score(score) => score_customers(&session, score, format).await?,
        Command::ScoreFile(job) => score_file::score_file(&session, job, format).await?,
        Command::Shadow(command) => shadow::shadow(&session, command, format).await?,
        Command::Explain(explain) => explain_customer(&session, explain, format).await?,
        Command::Importance(importance) => {
            let method = match importance.method {
                None => pb::ImportanceMethod::Unspecified,
                Some(ImportanceMethod::Native) => pb::ImportanceMethod::ModelNative,
                Some(ImportanceMethod::Permutation) => pb::ImportanceMethod::Permutation,
                Some(ImportanceMethod::MeanAbsShap) => pb::ImportanceMethod::MeanAbsShap,
            };
            let request = pb::FeatureImportanceRequest {
                model: importance.target.model_ref()?,
                method: method.into(),
                dataset: importance.dataset,
                rows: Vec::new(),
            };
            let response = session
                .scoring()
                .feature_importance(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let mut table = Table::new(&["FEATURE", "IMPORTANCE", "STDDEV", "METHOD"]);
            for score in &response.features {
                table.row(vec![
                    json!(score.feature),
                    json!(score.importance),
                    json!(score.stddev),
                    json!(response.method().as_str_name()),
                ]);
            }
            table.print(format);
        }
        Command::Evaluate {
            target,
            dataset,
            threshold,
        } => {
            let request = pb::EvaluateRequest {
                model: target.model_ref()?,
                dataset,
                rows: Vec::new(),
                threshold,
            };
            let response = session
                .scoring()
                .evaluate(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            print_evaluation(&response, format)?;
        }
        Command::Evaluations { model, version } => {
            let model = model.with_flags(version, None)?;
            if model.alias.is_some() {
                bail!("{model}: evaluations are listed by version number, not alias");
            }
            let request = pb::ListEvaluationsRequest {
                name: model.name.clone(),
                version: model.version.unwrap_or(0),
            };
            let response = session
                .registry()
                .list_evaluations(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let mut table = Table::new(&[
                "EVALUATION",
                "CREATED",
                "MODEL",
                "VERSION",
                "DATASET",
                "THRESHOLD",
                "ROWS",
                "REJECTED",
                "ROC AUC",
                "PR AUC",
                "LOG LOSS",
                "BRIER",
                "F1",
            ]);
            for e in &response.evaluations {
                let m = e.metrics.clone().unwrap_or_default();
                let served_by = e.served_by.clone().unwrap_or_default();
                table.row(vec![
                    json!(e.evaluation_id),
                    json!(utc_of(e.created_at.as_ref())),
                    json!(served_by.name),
                    json!(served_by.version),
                    json!(e.dataset),
                    json!(e.threshold),
                    json!(m.rows),
                    json!(e.rejected_rows),
                    json!(m.roc_auc),
                    json!(m.pr_auc),
                    json!(m.log_loss),
                    json!(m.brier),
                    json!(m.f1),
                ]);
            }
            table.print(format);
        }
        Command::Compare(compare) => {
            let (champion, challenger) = compare.models()?;
            let request = pb::CompareRequest {
                champion,
                challenger,
                dataset: compare.dataset,
                rows: Vec::new(),
                threshold: 0.0,
            };
            let response = session
                .scoring()
                .compare(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            print_comparison(&response, format)?;
        }
        Command::Threshold {
            target,
            dataset,
            objective,
        } => {
            let request = pb::SuggestThresholdRequest {
                model: target.model_ref()?,
                dataset,
                rows: Vec::new(),
                objective: objective.clone(),
            };
            let response = session
                .scoring()
                .suggest_threshold(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let served_by = response.served_by.clone().unwrap_or_default();
            let mut table = Table::new(&[
                "MODEL",
                "VERSION",
                "OBJECTIVE",
                "THRESHOLD",
                "PRECISION",
                "RECALL",
                "F1",
                "FLAGGED",
                "ROWS",
            ]);
            table.row(vec![
                json!(served_by.name),
                json!(served_by.version),
                json!(objective),
                json!(response.threshold),
                json!(response.precision),
                json!(response.recall),
                json!(response.f1),
                json!(response.flagged),
                json!(response.rows),
            ]);
            table.print(format);
        }
        Command::SetThreshold { model, values } => {
            let (name, version, threshold) = version_and_value(&model, &values)?;
            let threshold: f64 = threshold
                .parse()
                .with_context(|| format!("THRESHOLD {threshold:?} is not a number"))?;
            let request = pb::SetThresholdRequest {
                name,
                version,
                threshold,
            };
            let version = session
                .registry()
                .set_threshold(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            show(&version, format);
        }
        Command::SetReference { model, values } => {
            let (name, version, dataset) = version_and_value(&model, &values)?;
            let request = pb::SetReferenceDatasetRequest {
                name,
                version,
                dataset,
            };
            let version = session
                .registry()
                .set_reference_dataset(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            show(&version, format);
        }
        Command::Audit {
            name,
            limit,
            before,
        } => {
            let request = pb::ListAuditEventsRequest {
                name,
                limit,
                before_id: before.unwrap_or(0),
            };
            let page = session
                .registry()
                .list_audit_events(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let mut table = Table::new(&["AT", "ACTOR", "ACTION", "NAME", "DETAIL", "ID"]);
            for event in page.events {
                let detail: Value =
                    serde_json::from_str(&event.detail_json).unwrap_or(json!(event.detail_json));
                table.row(vec![
                    json!(utc_of(event.at.as_ref())),
                    json!(event.actor),
                    json!(event.action),
                    json!(event.name),
                    detail,
                    json!(event.id),
                ]);
            }
            table.print(format);
            if page.next_before_id > 0 && format == Format::Table {
                eprintln!("older events: --before {}", page.next_before_id);
            }
        }
        Command::Outcomes(command) => outcomes::outcomes(&session, command).await?,
        Command::Performance(performance) => {
            outcomes::performance(&session, performance, format).await?;
        }
        Command::Completions { shell } => print_completions(shell),
    }
    Ok(())
}

async fn register_model(session: &Session, register: Register) -> anyhow::Result<pb::ModelVersion> {
    let bytes = std::fs::read(&register.file)
        .with_context(|| format!("cannot read {}", register.file.display()))?;
    let metadata = pb::RegisterModelMetadata {
        name: register.name,
        description: register.description,
        tags: register.tags.into_iter().collect(),
        feature_names: register.feature_names,
        positive_class: register.positive_class,
        threshold: register.threshold,
        risk_band_cuts: register.risk_band_cuts,
        reference_dataset: register.reference_dataset,
        aliases: register.aliases,
    };
    let first = pb::RegisterModelRequest {
        part: Some(pb::register_model_request::Part::Metadata(metadata)),
    };
    let chunks = upload_messages(&register.file, bytes, |chunk| pb::RegisterModelRequest {
        part: Some(pb::register_model_request::Part::OnnxChunk(chunk)),
    });
    let stream = tokio_stream::iter(std::iter::once(first).chain(chunks));
    Ok(session
        .registry()
        .register_model(session.request(stream)?)
        .await
        .map_err(status)?
        .into_inner())
}

/// The file in chunks, drawing a progress bar as the transport takes them.
fn upload_messages<M, W: Fn(Vec<u8>) -> M>(
    file: &std::path::Path,
    bytes: Vec<u8>,
    wrap: W,
) -> impl Iterator<Item = M> + use<M, W> {
    let bar = progress_bar(
        bytes.len() as u64,
        "{msg} [{bar:20}] {percent:>3}%  {bytes}/{total_bytes}  {bytes_per_sec}",
    );
    bar.set_message(format!("uploading {}", file.display()));
    let chunks: Vec<Vec<u8>> = bytes.chunks(UPLOAD_CHUNK).map(<[u8]>::to_vec).collect();
    let count = chunks.len();
    chunks.into_iter().enumerate().map(move |(i, chunk)| {
        bar.inc(chunk.len() as u64);
        if i + 1 == count {
            bar.finish();
        }
        wrap(chunk)
    })
}

async fn explain_customer(
    session: &Session,
    explain: Explain,
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::ExplainRequest {
        model: explain.target.model_ref()?,
        customer: Some(customer(&explain.input.read()?)?),
    };
    let response = session
        .scoring()
        .explain(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let mut attributions = response.attributions.clone();
    attributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    if format == Format::Json {
        let served_by = response.served_by.as_ref();
        let details = json!({
            "model": served_by.map(|s| &s.name), "version": served_by.map(|s| s.version),
            "method": response.method, "base_value": response.base_value,
            "output_value": response.output_value, "max_abs_error": response.max_abs_error,
            "attributions": attributions.iter().map(|a| json!({
                "feature": a.feature, "value": value_json(a.value.as_ref()), "contribution": a.contribution,
            })).collect::<Vec<_>>(),
        });
        line(&details.to_string());
        return Ok(());
    }
    let probability = 1.0 / (1.0 + (-response.output_value).exp());
    line(&format!(
        "{} (±{:.1e}): base {:+.4} + contributions = {:+.4} log-odds, churn probability {probability:.4}",
        response.method, response.max_abs_error, response.base_value, response.output_value
    ));
    let mut table = Table::new(&["FEATURE", "VALUE", "CONTRIBUTION"]);
    for attribution in &attributions {
        table.row(vec![
            json!(attribution.feature),
            value_json(attribution.value.as_ref()),
            json!(attribution.contribution),
        ]);
    }
    table.print(format);
    Ok(())
}

/// The scalar metrics as (name, value) rows, in the order tables print them.
fn metric_rows(metrics: &pb::Metrics, rejected: u64) -> Vec<(&'static str, Value)> {
    let confusion = metrics.confusion.unwrap_or_default();
    vec![
        ("rows", json!(metrics.rows)),
        ("rejected rows", json!(rejected)),
        ("positives", json!(metrics.positives)),
        ("roc auc", json!(metrics.roc_auc)),
        ("pr auc", json!(metrics.pr_auc)),
        ("log loss", json!(metrics.log_loss)),
        ("brier", json!(metrics.brier)),
        ("accuracy", json!(metrics.accuracy)),
        ("precision", json!(metrics.precision)),
        ("recall", json!(metrics.recall)),
        ("f1", json!(metrics.f1)),
        ("true positives", json!(confusion.tp)),
        ("false positives", json!(confusion.fp)),
        ("true negatives", json!(confusion.tn)),
        ("false negatives", json!(confusion.r#fn)),
    ]
}

fn print_evaluation(response: &pb::EvaluateResponse, format: Format) -> anyhow::Result<()> {
    let metrics = response
        .metrics
        .clone()
        .context("the server sent no metrics")?;
    let served_by = response.served_by.clone().unwrap_or_default();
    if format == Format::Json {
        let mut details: serde_json::Map<String, Value> =
            metric_rows(&metrics, response.rejected_rows)
                .into_iter()
                .map(|(name, value)| (name.replace(' ', "_"), value))
                .collect();
        details.insert("model".to_owned(), json!(served_by.name));
        details.insert("version".to_owned(), json!(served_by.version));
        details.insert("evaluation_id".to_owned(), json!(response.evaluation_id));
        details.insert(
            "lift".to_owned(),
            json!(metrics.lift.iter().map(|l| json!({"decile": l.decile, "churn_rate": l.churn_rate, "lift": l.lift, "cumulative_capture": l.cumulative_capture})).collect::<Vec<_>>()),
        );
        // JSON has no infinity: the threshold +inf of the curves' end point becomes null.
        for (key, curve) in [
            ("roc_curve", &metrics.roc_curve),
            ("pr_curve", &metrics.pr_curve),
        ] {
            details.insert(
                key.to_owned(),
                json!(
                    curve
                        .iter()
                        .map(|p| json!({"x": p.x, "y": p.y, "threshold": p.threshold}))
                        .collect::<Vec<_>>()
                ),
            );
        }
        line(&Value::Object(details).to_string());
        return Ok(());
    }
    line(&format!(
        "{} version {} · evaluation {}",
        served_by.name, served_by.version, response.evaluation_id
    ));
    let mut table = Table::new(&["METRIC", "VALUE"]);
    for (name, value) in metric_rows(&metrics, response.rejected_rows) {
        table.row(vec![json!(name), value]);
    }
    table.print(format);
    for rejection in &response.rejections {
        line(&format!("rejected: {}", rejection.message));
    }
    line("");
    let mut lift = Table::new(&["DECILE", "CHURN RATE", "LIFT", "CUMULATIVE CAPTURE"]);
    for l in &metrics.lift {
        lift.row(vec![
            json!(l.decile),
            json!(l.churn_rate),
            json!(l.lift),
            json!(l.cumulative_capture),
        ]);
    }
    lift.print(format);
    line("");
    let mut calibration = Table::new(&["BIN", "MEAN PREDICTED", "OBSERVED RATE", "COUNT"]);
    for c in &metrics.calibration {
        calibration.row(vec![
            json!(format!("{:.1}-{:.1}", c.lower, c.upper)),
            json!(c.mean_predicted),
            json!(c.observed_rate),
            json!(c.count),
        ]);
    }
    calibration.print(format);
    Ok(())
}

fn print_comparison(response: &pb::CompareResponse, format: Format) -> anyhow::Result<()> {
    let (champion, challenger) = (
        response
            .champion
            .clone()
            .context("no champion evaluation")?,
        response
            .challenger
            .clone()
            .context("no challenger evaluation")?,
    );
    let label = |e: &pb::EvaluateResponse| {
        let s = e.served_by.clone().unwrap_or_default();
        format!("{} v{}", s.name, s.version)
    };
    let difference = response.roc_auc_difference.unwrap_or_default();
    let a = metric_rows(
        &champion.metrics.clone().unwrap_or_default(),
        champion.rejected_rows,
    );
    let b = metric_rows(
        &challenger.metrics.clone().unwrap_or_default(),
        challenger.rejected_rows,
    );
    let mut table = Table::new(&["METRIC", "CHAMPION", "CHALLENGER", "DIFFERENCE"]);
    for ((name, a), (_, b)) in a.into_iter().zip(b) {
        let delta = match (a.as_i64(), b.as_i64(), a.as_f64(), b.as_f64()) {
            (Some(x), Some(y), _, _) => json!(y - x),
            (_, _, Some(x), Some(y)) => json!(y - x),
            _ => Value::Null,
        };
        table.row(vec![json!(name), a, b, delta]);
    }
    if format == Format::Json {
        table.print(format);
        line(&json!({
            "champion": label(&champion), "challenger": label(&challenger),
            "roc_auc_difference": difference.difference, "standard_error": difference.standard_error,
            "ci_lower": difference.lower, "ci_upper": difference.upper, "p_value": difference.p_value,
            "paired_rows": response.paired_rows,
        }).to_string());
        return Ok(());
    }
    line(&format!(
        "champion {} · challenger {}",
        label(&champion),
        label(&challenger)
    ));
    table.print(format);
    line(&format!(
        "ROC AUC difference (challenger - champion) {:+.4}, 95% CI [{:+.4}, {:+.4}], DeLong p = {:.3} over {} paired rows",
        difference.difference,
        difference.lower,
        difference.upper,
        difference.p_value,
        response.paired_rows
    ));
    Ok(())
}

fn value_json(value: Option<&pb::FeatureValue>) -> Value {
    match value.and_then(|v| v.kind.as_ref()) {
        Some(pb::feature_value::Kind::Number(number)) => json!(number),
        Some(pb::feature_value::Kind::Text(text)) => json!(text),
        Some(pb::feature_value::Kind::Flag(flag)) => json!(flag),
        None => Value::Null,
    }
}

/// Reasons as one cell: `feature=value (+0.41); …`.
fn reasons_cell(reasons: &[pb::Reason]) -> Value {
    if reasons.is_empty() {
        return Value::Null;
    }
    json!(reasons_text(reasons))
}

/// `feature=value (+0.123); …`, largest first as the server sends them.
fn reasons_text(reasons: &[pb::Reason]) -> String {
    reasons
        .iter()
        .map(|r| {
            format!(
                "{}={} ({:+.3})",
                r.feature,
                value_json(r.value.as_ref()),
                r.contribution
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn score_customers(session: &Session, score: Score, format: Format) -> anyhow::Result<()> {
    let model = score.target.model_ref()?;
    let top_reasons = score.top_reasons;
    let input = score.input.read()?;
    let mut table = Table::new(&[
        "ROW",
        "CUSTOMER",
        "PROBABILITY",
        "WILL CHURN",
        "BAND",
        "MODEL",
        "VERSION",
        "REASONS",
        "ERROR",
    ]);
    let mut scoring = session.scoring();
    match input {
        Value::Array(items) => {
            let customers = items
                .iter()
                .enumerate()
                .map(|(row, item)| customer(item).with_context(|| format!("customer {row}")))
                .collect::<Result<_, _>>()?;
            let request = pb::ScoreBatchRequest {
                model,
                customers,
                top_reasons,
                ..Default::default()
            };
            let response = scoring
                .score_batch(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            for result in &response.results {
                match &result.outcome {
                    Some(pb::row_result::Outcome::Prediction(p)) => {
                        table.row(prediction_cells(result.row, p, response.served_by.as_ref()))
                    }
                    Some(pb::row_result::Outcome::Error(e)) => table.row(vec![
                        json!(result.row),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        json!(e.message),
                    ]),
                    None => bail!("the server sent row {} without an outcome", result.row),
                }
            }
        }
        single => {
            let request = pb::ScoreRequest {
                model,
                customer: Some(customer(&single)?),
                top_reasons,
            };
            let response = scoring
                .score(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let prediction = response
                .prediction
                .context("the server sent no prediction")?;
            table.row(prediction_cells(
                0,
                &prediction,
                response.served_by.as_ref(),
            ));
        }
    }
    table.print(format);
    Ok(())
}

fn prediction_cells(
    row: u32,
    prediction: &pb::Prediction,
    served_by: Option<&pb::ServedBy>,
) -> Vec<Value> {
    vec![
        json!(row),
        json!(prediction.customer_id),
        json!(prediction.churn_probability),
        json!(prediction.will_churn),
        json!(prediction.risk_band().as_str_name()),
        served_by.map_or(Value::Null, |s| json!(s.name)),
        served_by.map_or(Value::Null, |s| json!(s.version)),
        reasons_cell(&prediction.top_reasons),
        Value::Null,
    ]
}

fn versions_table(versions: &[pb::ModelVersion]) -> Table {
    let mut table = Table::new(&[
        "NAME",
        "VERSION",
        "CREATED",
        "SHA256",
        "SIZE",
        "ALIASES",
        "ARCHIVED",
        "PRODUCER",
        "DESCRIPTION",
    ]);
    for v in versions {
        table.row(vec![
            json!(v.name),
            json!(v.version),
            json!(utc_of(v.created_at.as_ref())),
            json!(v.sha256.get(..12).unwrap_or(&v.sha256)),
            json!(v.size_bytes),
            json!(v.aliases),
            json!(v.archived),
            json!(v.producer),
            json!(v.description),
        ]);
    }
    table
}

fn show(version: &pb::ModelVersion, format: Format) {
    if format == Format::Json {
        let features: Vec<Value> = version
            .features
            .iter()
            .map(|f| json!({"name": f.name, "kind": f.kind().as_str_name(), "allowed_values": f.allowed_values}))
            .collect();
        let details = json!({
            "name": version.name, "version": version.version, "sha256": version.sha256, "aliases": version.aliases,
            "positive_class": version.positive_class, "class_labels": version.class_labels,
            "threshold": version.threshold, "risk_band_cuts": version.risk_band_cuts, "producer": version.producer,
            "archived": version.archived, "description": version.description, "tags": version.tags,
            "reference_dataset": version.reference_dataset, "features": features,
        });
        line(&details.to_string());
        return;
    }
    line(&format!(
        "{} version {}  ({})",
        version.name, version.version, version.description
    ));
    line(&format!("  sha256          {}", version.sha256));
    line(&format!("  aliases         {}", version.aliases.join(", ")));
    line(&format!("  producer        {}", version.producer));
    line(&format!(
        "  classes         {} (positive: {})",
        version.class_labels.join(", "),
        version.positive_class
    ));
    line(&format!(
        "  threshold       {}   risk bands at {:?}",
        version.threshold, version.risk_band_cuts
    ));
    line(&format!("  reference data  {}", version.reference_dataset));
    line(&format!("  archived        {}", version.archived));
    line("");
    let mut table = Table::new(&["FEATURE", "KIND", "ALLOWED VALUES"]);
    for feature in &version.features {
        table.row(vec![
            json!(feature.name),
            json!(feature.kind().as_str_name()),
            json!(feature.allowed_values),
        ]);
    }
    table.print(Format::Table);
}

fn datasets_table(datasets: &[pb::Dataset]) -> Table {
    let mut table = Table::new(&["NAME", "ROWS", "POSITIVES", "COLUMNS", "SHA256"]);
    for d in datasets {
        table.row(vec![
            json!(d.name),
            json!(d.rows),
            json!(d.positives),
            json!(d.columns.len()),
            json!(d.sha256.get(..12).unwrap_or(&d.sha256)),
        ]);
    }
    table
}

fn read_input(source: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        text = std::fs::read_to_string(source).with_context(|| format!("cannot read {source}"))?;
    }
    Ok(text)
}

fn status(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

/// A `--set` value: a number, true/false, empty for missing, else text.
fn flag_value(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    if let Ok(flag) = text.parse::<bool>() {
        return json!(flag);
    }
    text.parse::<f64>()
        .map_or_else(|_| json!(text), |number| json!(number))
}

fn customer(value: &Value) -> anyhow::Result<pb::Customer> {
    let Value::Object(object) = value else {
        bail!("expected a JSON object with customer_id and features")
    };
    let customer_id = match object.get("customer_id") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(id)) => id.clone(),
        Some(other) => bail!("customer_id must be a string, got {other}"),
    };
    let features = match object.get("features") {
        Some(Value::Object(features)) => features,
        _ => bail!("features must be a JSON object of feature name to value"),
    };
    let features = features
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                Value::Null => None,
                Value::Bool(flag) => Some(pb::feature_value::Kind::Flag(*flag)),
                Value::Number(number) => Some(pb::feature_value::Kind::Number(
                    number
                        .as_f64()
                        .with_context(|| format!("feature {name}: {number} is not a double"))?,
                )),
                Value::String(text) => Some(pb::feature_value::Kind::Text(text.clone())),
                other => bail!(
                    "feature {name}: expected a number, text, true/false or null, got {other}"
                ),
            };
            Ok((name.clone(), pb::FeatureValue { kind }))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(pb::Customer {
        customer_id,
        features,
    })
}
