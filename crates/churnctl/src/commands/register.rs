//! `register`: an ONNX file uploaded in chunks as the next version of a model, with a
//! progress bar.

use std::path::PathBuf;

use anyhow::Context;
use churn_api::v1 as pb;
use clap::Args;

use crate::args::key_value;
use crate::output::{Format, progress_bar};
use crate::session::{Session, status};

const UPLOAD_CHUNK: usize = 256 * 1024;

#[derive(Debug, Args)]
pub(crate) struct Register {
    /// The ONNX file.
    pub(crate) file: PathBuf,
    /// Model name; the version number is the next one of this name.
    #[arg(long)]
    pub(crate) name: String,
    #[arg(long, default_value = "")]
    pub(crate) description: String,
    /// A tag, `key=value`; repeatable.
    #[arg(long = "tag", value_parser = key_value)]
    pub(crate) tags: Vec<(String, String)>,
    /// Column names of a dense `[N,F]` input, comma-separated, when the file does not carry them.
    #[arg(long, value_delimiter = ',')]
    pub(crate) feature_names: Vec<String>,
    /// The class label counted as churn; default: the last class.
    #[arg(long, default_value = "")]
    pub(crate) positive_class: String,
    /// Decision threshold; default: the model's own metadata, else 0.5.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) threshold: f64,
    /// Risk band cut points `medium,high`; default 0.3,0.6.
    #[arg(long, value_delimiter = ',')]
    pub(crate) risk_band_cuts: Vec<f64>,
    /// A registered dataset to use as reference.
    #[arg(long, default_value = "")]
    pub(crate) reference_dataset: String,
    /// Point this alias at the new version once it is valid; repeatable.
    #[arg(long = "alias")]
    pub(crate) aliases: Vec<String>,
}

pub(crate) async fn register(
    session: &Session,
    register: Register,
    format: Format,
) -> anyhow::Result<()> {
    let version = register_model(session, register).await?;
    super::models::versions_table(std::slice::from_ref(&version)).print(format);
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
pub(crate) fn upload_messages<M, W: Fn(Vec<u8>) -> M>(
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
