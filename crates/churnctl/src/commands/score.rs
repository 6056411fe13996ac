//! `score`: customers from flags or JSON, scored as one batch, printed as a table or JSON
//! lines.

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use clap::Args;
use serde_json::{Value, json};

use crate::args::Target;
use crate::customers::{CustomerInput, customer, reasons_cell};
use crate::output::{Format, Table};
use crate::session::{Session, status};

#[derive(Debug, Args)]
pub(crate) struct Score {
    #[command(flatten)]
    pub(crate) target: Target,
    #[command(flatten)]
    pub(crate) input: CustomerInput,
    /// Also return each customer's N largest reasons (needs the version's reference dataset).
    #[arg(long, default_value_t = 0)]
    pub(crate) top_reasons: u32,
}

pub(crate) async fn score_customers(
    session: &Session,
    score: Score,
    format: Format,
) -> anyhow::Result<()> {
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
                        // Through a traffic split each row names its own version.
                        let served_by = result.served_by.as_ref().or(response.served_by.as_ref());
                        table.row(prediction_cells(result.row, p, served_by))
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

pub(crate) fn prediction_cells(
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
