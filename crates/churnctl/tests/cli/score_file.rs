//! `churnctl score-file` against the real server: a job killed mid-file and resumed
//! writes the same bytes as an uninterrupted one; bad rows land in the side file with
//! their row and error and nothing is dropped; `--top` ranks as a full sort does; CSV
//! and Parquet inputs give the same scores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parquet::basic::{
    Compression, ConvertedType, GzipLevel, Repetition, Type as PhysicalType, ZstdLevel,
};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;
use tests::{TestServer, repo_path};

/// The hold-out customers repeated with distinct ids until `rows` data rows.
pub(crate) fn customers_csv(rows: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(repo_path("models/data/test.csv")).expect("test.csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    let holdout: Vec<Vec<String>> = lines
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect();
    let data = (0..rows)
        .map(|i| {
            let mut row = holdout[i % holdout.len()].clone();
            row[0] = format!("{}-{}", row[0], i / holdout.len());
            row
        })
        .collect();
    (header, data)
}

pub(crate) fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).expect("write the input");
}

pub(crate) fn churnctl(server: &TestServer, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnctl"));
    command
        .args([
            "--server",
            &format!("http://{}", server.address),
            "--output",
            "json",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub(crate) async fn finished(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("churnctl"))
        .await
        .expect("churnctl task")
}

pub(crate) async fn run(server: &TestServer, args: &[&str]) -> serde_json::Value {
    let output = finished(churnctl(server, args)).await;
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_mid_file_and_resumed_writes_the_same_bytes() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (header, mut rows) = customers_csv(40_000);
    // A row too short and a row the server rejects, near the start and near the end.
    rows[10].truncate(5);
    let tenure = header.iter().position(|c| c == "tenure").expect("tenure");
    rows[39_990][tenure] = "forty".to_owned();
    let input = path(dir.path(), "customers.csv");
    write_csv(&input, &header, &rows);
    let input = input.to_str().expect("utf-8 path");

    for output in ["scores.parquet", "scores.csv"] {
        let whole = path(dir.path(), &format!("whole-{output}"));
        let summary = run(
            &server,
            &["score-file", input, whole.to_str().expect("path")],
        )
        .await;
        assert_eq!(summary["rows"], 40_000);
        assert_eq!(summary["rejected"], 2);

        let resumed = path(dir.path(), &format!("resumed-{output}"));
        let journal = PathBuf::from(format!("{}.partial", resumed.display()));
        let mut child = churnctl(
            &server,
            &["score-file", input, resumed.to_str().expect("path")],
        )
        .spawn()
        .expect("start churnctl");
        let deadline = Instant::now() + Duration::from_secs(120);
        let journaled = loop {
            let lines = std::fs::read_to_string(&journal)
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if lines > 1_000 {
                break lines;
            }
            assert!(Instant::now() < deadline, "the job journaled nothing");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        child.kill().expect("SIGKILL churnctl");
        child.wait().expect("reap churnctl");
        let left = read_text(&journal).lines().count();
        assert!(
            left >= journaled && left < 40_001,
            "killed mid-file: {left} journal lines"
        );
        assert!(!resumed.exists(), "no output before the job completes");

        let refused = finished(churnctl(
            &server,
            &["score-file", input, resumed.to_str().expect("path")],
        ))
        .await;
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

        let summary = run(
            &server,
            &[
                "score-file",
                input,
                resumed.to_str().expect("path"),
                "--resume",
            ],
        )
        .await;
        assert!(summary["resumed_at_row"].as_u64().expect("resumed_at_row") > 0);
        assert_eq!(summary["rows"], 40_000);
        assert_eq!(
            std::fs::read(&whole).expect("whole"),
            std::fs::read(&resumed).expect("resumed"),
            "{output}: resumed output differs from the uninterrupted one"
        );
        let side = |p: &Path| read_text(&p.with_extension("errors.csv"));
        assert_eq!(side(&whole), side(&resumed));
        assert!(
            !journal.exists(),
            "the journal is removed once the job is done"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_go_to_the_side_file_and_no_row_is_dropped() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (header, mut rows) = customers_csv(50);
    let column = |name: &str| header.iter().position(|c| c == name).expect(name);
    rows[3].truncate(4);
    rows[7][column("tenure")] = "forty".to_owned();
    rows[20][column("monthlycharges")] = "inf".to_owned();
    rows[21].push("extra".to_owned());
    let input = path(dir.path(), "customers.csv");
    write_csv(&input, &header, &rows);
    let scores = path(dir.path(), "scores.csv");
    let summary = run(
        &server,
        &[
            "score-file",
            input.to_str().expect("path"),
            scores.to_str().expect("path"),
        ],
    )
    .await;
    assert_eq!(summary["scored"], 46);
    assert_eq!(summary["rejected"], 4);

    let mut side = csv::Reader::from_path(scores.with_extension("errors.csv")).expect("side file");
    let rejected: Vec<(String, String, String, String)> = side
        .deserialize()
        .map(|record| record.expect("side file record"))
        .collect();
    let expected_rows = ["3", "7", "20", "21"];
    assert_eq!(
        rejected.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        expected_rows
    );
    for (record, row) in rejected.iter().zip(expected_rows) {
        let row: usize = row.parse().expect("row");
        assert_eq!(record.1, rows[row][0], "the side file names the customer");
    }
    assert_eq!(rejected[1].2, "tenure");
    assert!(rejected[1].3.contains("forty"), "{}", rejected[1].3);
    assert_eq!(rejected[2].2, "monthlycharges");
    assert!(rejected[0].3.contains("has 4 fields"), "{}", rejected[0].3);
    assert!(rejected[3].3.contains("has 22 fields"), "{}", rejected[3].3);

    let scored: Vec<String> = csv::Reader::from_path(&scores)
        .expect("scores")
        .records()
        .map(|r| r.expect("record")[0].to_owned())
        .collect();
    let expected: Vec<String> = (0..50)
        .filter(|i| ![3, 7, 20, 21].contains(i))
        .map(|i| rows[i][0].clone())
        .collect();
    assert_eq!(scored, expected, "every other row scored, in input order");

    // With reasons the job goes through ScoreStream instead of ScoreArrow: the same
    // scores and the same rejections.
    let with_reasons = path(dir.path(), "reasons.csv");
    run(
        &server,
        &[
            "score-file",
            input.to_str().expect("path"),
            with_reasons.to_str().expect("path"),
            "--top-reasons",
            "2",
        ],
    )
    .await;
    let scores_of = |file: &Path| -> Vec<Vec<String>> {
        csv::Reader::from_path(file)
            .expect("scores")
            .records()
            .map(|r| {
                r.expect("record")
                    .iter()
                    .take(4)
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    };
    assert_eq!(scores_of(&scores), scores_of(&with_reasons));
    assert_eq!(
        read_text(&scores.with_extension("errors.csv")),
        read_text(&with_reasons.with_extension("errors.csv"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ranks_by_value_at_risk_as_a_full_sort_does() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let (header, rows) = customers_csv(3_000);
    let input = path(dir.path(), "customers.csv");
    write_csv(&input, &header, &rows);
    let input = input.to_str().expect("path");
    let all = path(dir.path(), "all.csv");
    let top = path(dir.path(), "top.csv");
    let weighted = ["--value-column", "monthlycharges", "--horizon", "12"];
    let mut args = vec!["score-file", input, all.to_str().expect("path")];
    args.extend(weighted);
    run(&server, &args).await;
    let mut args = vec![
        "score-file",
        input,
        top.to_str().expect("path"),
        "--top",
        "25",
    ];
    args.extend(weighted);
    let summary = run(&server, &args).await;
    assert_eq!(summary["scored"], 3_000, "--top still scores everyone");

    let read = |p: &Path| -> Vec<(String, f64, f64)> {
        csv::Reader::from_path(p)
            .expect("scores")
            .records()
            .map(|r| {
                let r = r.expect("record");
                (
                    r[0].to_owned(),
                    r[1].parse().expect("probability"),
                    r[4].parse().expect("value at risk"),
                )
            })
            .collect()
    };
    let mut all = read(&all);
    let charges = header
        .iter()
        .position(|c| c == "monthlycharges")
        .expect("column");
    for ((_, probability, at_risk), row) in all.iter().zip(&rows) {
        let monthly: f64 = row[charges].parse().expect("charges");
        assert!((at_risk - probability * monthly * 12.0).abs() < 1e-9);
    }
    // A stable sort keeps input order among equal risks, as --top's tie-break does.
    all.sort_by(|a, b| b.2.total_cmp(&a.2));
    all.truncate(25);
    assert_eq!(read(&top), all);
}

/// The hold-out file as Parquet with typed columns: strings, INT64 for whole numbers,
/// DOUBLE for charges, and nulls where the CSV has a blank.
fn write_parquet(path: &Path, header: &[String], rows: &[Vec<String>], compression: Compression) {
    let whole = ["seniorcitizen", "tenure"];
    let doubles = ["monthlycharges", "totalcharges"];
    let fields = header
        .iter()
        .map(|name| {
            let (physical, converted) = if whole.contains(&name.as_str()) {
                (PhysicalType::INT64, ConvertedType::NONE)
            } else if doubles.contains(&name.as_str()) {
                (PhysicalType::DOUBLE, ConvertedType::NONE)
            } else {
                (PhysicalType::BYTE_ARRAY, ConvertedType::UTF8)
            };
            Arc::new(
                Type::primitive_type_builder(name, physical)
                    .with_converted_type(converted)
                    .with_repetition(Repetition::OPTIONAL)
                    .build()
                    .expect("column type"),
            )
        })
        .collect();
    let schema = Type::group_type_builder("customers")
        .with_fields(fields)
        .build()
        .expect("schema");
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = SerializedFileWriter::new(
        file,
        Arc::new(schema),
        Arc::new(
            WriterProperties::builder()
                .set_compression(compression)
                .build(),
        ),
    )
    .expect("parquet writer");
    let mut group = writer.next_row_group().expect("row group");
    for (index, name) in header.iter().enumerate() {
        let cells: Vec<&str> = rows.iter().map(|row| row[index].trim()).collect();
        let levels: Vec<i16> = cells.iter().map(|c| i16::from(!c.is_empty())).collect();
        let present = cells.iter().filter(|c| !c.is_empty());
        let mut column = group.next_column().expect("column").expect("a column");
        if whole.contains(&name.as_str()) {
            let values: Vec<i64> = present.map(|c| c.parse().expect("whole")).collect();
            column
                .typed::<Int64Type>()
                .write_batch(&values, Some(&levels), None)
                .expect("write");
        } else if doubles.contains(&name.as_str()) {
            let values: Vec<f64> = present.map(|c| c.parse().expect("double")).collect();
            column
                .typed::<DoubleType>()
                .write_batch(&values, Some(&levels), None)
                .expect("write");
        } else {
            let values: Vec<ByteArray> = present.map(|c| ByteArray::from(*c)).collect();
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, Some(&levels), None)
                .expect("write");
        }
        column.close().expect("close column");
    }
    group.close().expect("close row group");
    writer.close().expect("close parquet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_parquet_inputs_and_outputs_carry_the_same_scores() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = std::fs::read_to_string(repo_path("models/data/test.csv")).expect("test.csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows: Vec<Vec<String>> = lines
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect();
    assert!(
        rows.iter()
            .any(|row| row.iter().any(|c| c.trim().is_empty())),
        "the hold-out file has blanks (new customers' total charges) to carry as nulls"
    );
    let csv_input = repo_path("models/data/test.csv");
    let parquet_input = path(dir.path(), "customers.parquet");
    write_parquet(&parquet_input, &header, &rows, Compression::SNAPPY);

    let from_csv = path(dir.path(), "from-csv.csv");
    let from_parquet = path(dir.path(), "from-parquet.csv");
    let as_parquet = path(dir.path(), "scores.parquet");
    for (input, output) in [
        (csv_input.as_path(), &from_csv),
        (parquet_input.as_path(), &from_parquet),
        (csv_input.as_path(), &as_parquet),
    ] {
        let summary = run(
            &server,
            &[
                "score-file",
                input.to_str().expect("path"),
                output.to_str().expect("path"),
                "--alias",
                "challenger",
            ],
        )
        .await;
        assert_eq!(summary["rejected"], 0, "{}", input.display());
        assert_eq!(summary["version"], 2);
    }
    assert_eq!(read_text(&from_csv), read_text(&from_parquet));
    // What other writers use: Polars writes zstd by default, Spark and pandas offer gzip and
    // LZ4.
    for (codec, compression) in [
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4_RAW),
        ("lz4-hadoop", Compression::LZ4),
    ] {
        let input = path(dir.path(), &format!("customers-{codec}.parquet"));
        write_parquet(&input, &header, &rows, compression);
        let output = path(dir.path(), &format!("from-{codec}.csv"));
        let summary = run(
            &server,
            &[
                "score-file",
                input.to_str().expect("path"),
                output.to_str().expect("path"),
                "--model",
                "models:/telco-churn@challenger",
            ],
        )
        .await;
        assert_eq!(summary["rejected"], 0, "{codec}");
        assert_eq!(read_text(&output), read_text(&from_csv), "{codec}");
    }

    let reader = SerializedFileReader::new(std::fs::File::open(&as_parquet).expect("open"))
        .expect("a Parquet file");
    let metadata = reader.metadata().file_metadata();
    let version = metadata
        .key_value_metadata()
        .expect("key-value metadata")
        .iter()
        .find(|kv| kv.key == "churnserve.version")
        .and_then(|kv| kv.value.clone());
    assert_eq!(version.as_deref(), Some("2"));
    let parquet_rows: Vec<(String, f64, bool, String)> = reader
        .into_iter()
        .map(|row| {
            let columns = row.expect("row").into_columns();
            match &columns[..] {
                [
                    (_, Field::Str(id)),
                    (_, Field::Double(probability)),
                    (_, Field::Bool(will_churn)),
                    (_, Field::Str(band)),
                ] => (id.clone(), *probability, *will_churn, band.clone()),
                other => panic!("unexpected Parquet row {other:?}"),
            }
        })
        .collect();
    let csv_rows: Vec<(String, f64, bool, String)> = csv::Reader::from_path(&from_csv)
        .expect("scores")
        .records()
        .map(|r| {
            let r = r.expect("record");
            (
                r[0].to_owned(),
                r[1].parse().expect("probability"),
                r[2].parse().expect("label"),
                r[3].to_owned(),
            )
        })
        .collect();
    assert_eq!(parquet_rows.len(), rows.len());
    assert_eq!(parquet_rows, csv_rows);
}
