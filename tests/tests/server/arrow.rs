//! `ScoreArrow` through the real server: every row, version and error equal to what a
//! columnar `ScoreBatch` answers for the same customers, whatever Arrow types carry them.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, Date32Array, DictionaryArray, Int64Array, LargeStringArray, RecordBatch,
};
use churn_api::v1 as pb;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use tests::{BUNDLED, BUNDLED_MODEL, FixtureCustomer, LGBM, TestServer, fixture};
use tokio_stream::StreamExt;
use tonic::Code;

fn fixture_rows(model: &str) -> Vec<pb::Customer> {
    fixture(&format!("models/fixtures/{model}.json"), "customers")
        .iter()
        .map(FixtureCustomer::to_proto)
        .collect()
}

fn version(number: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: number,
        alias: String::new(),
    })
}

fn text(value: &str) -> pb::FeatureValue {
    pb::FeatureValue {
        kind: Some(pb::feature_value::Kind::Text(value.to_owned())),
    }
}

/// Rows with the errors a file holds: a word where a number belongs, an unknown
/// category, an infinite number, a missing value.
fn rows_with_errors(model: &str) -> Vec<pb::Customer> {
    let mut rows = fixture_rows(model);
    rows[1].features.insert("tenure".to_owned(), text("forty"));
    rows[2]
        .features
        .insert("contract".to_owned(), text("Ten year"));
    rows[3].features.insert(
        "monthlycharges".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Number(f64::INFINITY)),
        },
    );
    rows[4]
        .features
        .insert("totalcharges".to_owned(), pb::FeatureValue { kind: None });
    rows
}

async fn score_arrow(
    client: &mut ScoringServiceClient<tonic::transport::Channel>,
    messages: Vec<pb::ScoreArrowRequest>,
) -> Result<Vec<pb::ScoreArrowResponse>, tonic::Status> {
    let mut answers = client
        .score_arrow(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut seen = Vec::new();
    while let Some(answer) = answers.next().await {
        seen.push(answer?);
    }
    Ok(seen)
}

/// The customers as an Arrow IPC stream with `column` replaced by (or set to) `array`.
fn with_column(rows: &[pb::Customer], column: &str, array: ArrayRef) -> Vec<u8> {
    let plain = tests::arrow_ipc(&tests::customer_columns(rows));
    let batch = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(&plain), None)
        .expect("an IPC stream")
        .next()
        .expect("a batch")
        .expect("a batch");
    assert_eq!(array.len(), batch.num_rows());
    let mut fields: Vec<(String, ArrayRef)> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .zip(batch.columns().iter().cloned())
        .filter(|(name, _)| name != column)
        .collect();
    fields.push((column.to_owned(), array));
    tests::arrow_ipc_of(&RecordBatch::try_from_iter(fields).expect("a batch"))
}

/// The same record batch with other Arrow types: whole-number columns as int64, text
/// columns dictionary-encoded, the ids as large utf8, and a column no model reads.
fn retyped(ipc: &[u8]) -> Vec<u8> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_schema::DataType;
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
        .expect("an IPC stream");
    let batch = reader
        .into_iter()
        .next()
        .expect("a batch")
        .expect("a batch");
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let array: ArrayRef = match array.data_type() {
            DataType::Utf8 if field.name() == "customer_id" => {
                Arc::new(LargeStringArray::from_iter(array.as_string::<i32>().iter()))
            }
            DataType::Utf8 => Arc::new(DictionaryArray::<Int32Type>::from_iter(
                array.as_string::<i32>().iter(),
            )),
            DataType::Float64 => {
                let numbers = array.as_primitive::<Float64Type>();
                if numbers.iter().flatten().all(|n| n.fract() == 0.0) {
                    Arc::new(Int64Array::from_iter(
                        numbers.iter().map(|n| n.map(|n| n as i64)),
                    ))
                } else {
                    Arc::clone(array)
                }
            }
            _ => Arc::clone(array),
        };
        columns.push((field.name().clone(), array));
    }
    columns.push((
        "signup_day".to_owned(),
        Arc::new(Date32Array::from(vec![19_000; batch.num_rows()])),
    ));
    tests::arrow_ipc_of(&RecordBatch::try_from_iter(columns).expect("a batch"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_scores_exactly_as_a_columnar_batch_errors_included() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    for model in BUNDLED {
        let rows = rows_with_errors(model.file);
        let columns = tests::customer_columns(&rows);
        let batch = client
            .score_batch(pb::ScoreBatchRequest {
                model: version(model.version),
                columns: Some(columns.clone()),
                ..Default::default()
            })
            .await
            .expect("ScoreBatch")
            .into_inner();
        let errors = batch
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Some(pb::row_result::Outcome::Error(_))))
            .count();
        assert!(errors >= 2, "{}: {errors} rejected rows", model.file);

        let plain = tests::arrow_ipc(&columns);
        for ipc in [plain.clone(), retyped(&plain)] {
            let answers = score_arrow(
                &mut client,
                vec![pb::ScoreArrowRequest {
                    model: version(model.version),
                    arrow_ipc: ipc,
                    first_row: 0,
                }],
            )
            .await
            .expect("ScoreArrow");
            assert_eq!(answers.len(), 1);
            assert_eq!(answers[0].served_by, batch.served_by, "{}", model.file);
            assert_eq!(
                tests::arrow_results(&answers[0]),
                batch.results,
                "{}",
                model.file
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrow_stream_numbers_rows_and_stays_on_its_version() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = fixture_rows(LGBM.file);
    let message = |range: std::ops::Range<usize>, model, first_row| pb::ScoreArrowRequest {
        model,
        arrow_ipc: tests::arrow_ipc(&tests::customer_columns(&rows[range])),
        first_row,
    };
    let answers = score_arrow(
        &mut client,
        vec![
            message(0..3, version(LGBM.version), 10),
            // Later messages' model and first row are ignored, as in ScoreStream.
            message(3..5, version(1), 0),
            // An empty message gets an empty answer.
            pb::ScoreArrowRequest::default(),
            message(5..6, None, 0),
        ],
    )
    .await
    .expect("ScoreArrow");
    assert_eq!(answers.len(), 4);
    let numbers: Vec<u32> = answers
        .iter()
        .flat_map(tests::arrow_results)
        .map(|r| r.row)
        .collect();
    assert_eq!(numbers, [10, 11, 12, 13, 14, 15]);
    for answer in &answers {
        assert_eq!(
            answer.served_by.as_ref().expect("served_by").version,
            LGBM.version
        );
    }
    let by_batch = client
        .score_batch(pb::ScoreBatchRequest {
            model: version(LGBM.version),
            columns: Some(tests::customer_columns(&rows[..6])),
            ..Default::default()
        })
        .await
        .expect("ScoreBatch")
        .into_inner();
    let by_arrow: Vec<pb::RowResult> = answers.iter().flat_map(tests::arrow_results).collect();
    for (arrow, batch) in by_arrow.iter().zip(&by_batch.results) {
        assert_eq!(arrow.outcome, batch.outcome);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_arrow_is_refused_naming_what_is_wrong() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = fixture_rows(LGBM.file);
    let refused = |ipc: Vec<u8>| pb::ScoreArrowRequest {
        model: version(LGBM.version),
        arrow_ipc: ipc,
        first_row: 0,
    };

    let status = score_arrow(&mut client, vec![refused(b"not arrow at all".to_vec())])
        .await
        .expect_err("garbage");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("arrow_ipc: not an Arrow IPC stream"),
        "{}",
        status.message()
    );

    let ids = Arc::new(Date32Array::from(vec![1; 2])) as ArrayRef;
    let tenure = Arc::new(Date32Array::from(vec![1; 2])) as ArrayRef;
    for (column, array) in [("customer_id", ids), ("tenure", tenure)] {
        let ipc = with_column(&rows[..2], column, array);
        let status = score_arrow(&mut client, vec![refused(ipc)])
            .await
            .expect_err(column);
        assert_eq!(status.code(), Code::InvalidArgument, "{column}");
        assert!(
            status
                .message()
                .starts_with(&format!("arrow_ipc: column `{column}` is Arrow Date32")),
            "{}",
            status.message()
        );
    }

    let status = score_arrow(
        &mut client,
        vec![pb::ScoreArrowRequest {
            model: version(99),
            arrow_ipc: tests::arrow_ipc(&tests::customer_columns(&rows[..1])),
            first_row: 0,
        }],
    )
    .await
    .expect_err("unknown version");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_customer_ids_come_back_exactly() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = fixture_rows(LGBM.file);
    // Past 2^53, where a trip through f64 would change the id; and a null id.
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![
        Some(9_007_199_254_740_993),
        None,
        Some(-7),
    ]));
    let ipc = with_column(&rows[..3], "customer_id", ids);
    let answers = score_arrow(
        &mut client,
        vec![pb::ScoreArrowRequest {
            model: version(LGBM.version),
            arrow_ipc: ipc,
            first_row: 0,
        }],
    )
    .await
    .expect("ScoreArrow");
    let ids: Vec<String> = tests::arrow_results(&answers[0])
        .into_iter()
        .map(|result| match result.outcome {
            Some(pb::row_result::Outcome::Prediction(p)) => p.customer_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["9007199254740993", "", "-7"]);
}
