//! `churnctl`: the command-line client of churnserve. It talks to the server through the
//! public gRPC API only, so everything it does a client author can do too.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};
use tonic::transport::Endpoint;

/// Command-line client for churnserve.
#[derive(Debug, Parser)]
#[command(name = "churnctl", version)]
struct Cli {
    /// The server's address.
    #[arg(
        long,
        env = "CHURNSERVE_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score customers given as JSON: one object, or an array of them (scored as one batch).
    ///
    /// A customer is {"customer_id": "...", "features": {"tenure": 12, "contract": "One year",
    /// "totalcharges": null, ...}}: numbers, text, true/false, or null for a missing number.
    /// Prints one JSON line per customer.
    Score {
        /// Model name; default: the server's default model.
        #[arg(long, default_value = "")]
        model: String,
        /// Exact version; default: the alias `production`.
        #[arg(long, conflicts_with = "alias")]
        version: Option<u32>,
        /// Alias, such as `production` or `challenger`.
        #[arg(long)]
        alias: Option<String>,
        /// JSON file with the customers; `-` reads standard input.
        #[arg(default_value = "-")]
        customers: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Score {
            model,
            version,
            alias,
            customers,
        } => {
            let model = Some(pb::ModelRef {
                name: model,
                version: version.unwrap_or(0),
                alias: alias.unwrap_or_default(),
            });
            let input: Value = serde_json::from_str(&read_input(&customers)?)
                .context("customers are not valid JSON")?;
            let mut client = ScoringServiceClient::new(connect(&cli.server).await?);
            match input {
                Value::Array(items) => {
                    let customers = items
                        .iter()
                        .enumerate()
                        .map(|(row, item)| {
                            customer(item).with_context(|| format!("customer {row}"))
                        })
                        .collect::<Result<_, _>>()?;
                    let response = client
                        .score_batch(pb::ScoreBatchRequest {
                            model,
                            customers,
                            top_reasons: 0,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    for result in &response.results {
                        println!("{}", row_json(result, response.served_by.as_ref()));
                    }
                }
                single => {
                    let response = client
                        .score(pb::ScoreRequest {
                            model,
                            customer: Some(customer(&single)?),
                            top_reasons: 0,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    let prediction = response
                        .prediction
                        .context("the server sent no prediction")?;
                    println!(
                        "{}",
                        prediction_json(&prediction, response.served_by.as_ref())
                    );
                }
            }
            Ok(())
        }
    }
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

async fn connect(server: &str) -> anyhow::Result<tonic::transport::Channel> {
    Endpoint::from_shared(server.to_owned())
        .with_context(|| {
            format!("{server:?} is not a server address such as http://127.0.0.1:50051")
        })?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server}"))
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
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

fn served_by_json(served_by: Option<&pb::ServedBy>) -> Value {
    served_by.map_or(
        Value::Null,
        |s| json!({"name": s.name, "version": s.version, "sha256": s.sha256}),
    )
}

fn prediction_json(prediction: &pb::Prediction, served_by: Option<&pb::ServedBy>) -> Value {
    json!({
        "customer_id": prediction.customer_id,
        "churn_probability": prediction.churn_probability,
        "will_churn": prediction.will_churn,
        "risk_band": prediction.risk_band().as_str_name(),
        "served_by": served_by_json(served_by),
    })
}

fn row_json(result: &pb::RowResult, served_by: Option<&pb::ServedBy>) -> Value {
    let mut line = Map::new();
    line.insert("row".to_owned(), json!(result.row));
    match &result.outcome {
        Some(pb::row_result::Outcome::Prediction(prediction)) => {
            if let Value::Object(fields) = prediction_json(prediction, served_by) {
                line.extend(fields);
            }
        }
        Some(pb::row_result::Outcome::Error(error)) => {
            line.insert(
                "error".to_owned(),
                json!({"feature": error.feature, "message": error.message}),
            );
        }
        None => {
            line.insert(
                "error".to_owned(),
                json!({"feature": "", "message": "the server sent no outcome"}),
            );
        }
    }
    Value::Object(line)
}
