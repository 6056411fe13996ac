//! Models and versions: `models`, `versions`, `show`, `archive`, `set-threshold` and
//! `set-reference`, and the tables they print.

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use serde_json::{Value, json};

use crate::args::Target;
use crate::output::{Format, Table, line, utc_of};
use crate::reference::ModelArg;
use crate::session::{Session, status};

pub(crate) async fn list(session: &Session, format: Format) -> anyhow::Result<()> {
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

    Ok(())
}

pub(crate) async fn versions(
    session: &Session,
    model: ModelArg,
    all: bool,
    format: Format,
) -> anyhow::Result<()> {
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

    Ok(())
}

pub(crate) async fn show_version(
    session: &Session,
    target: Target,
    format: Format,
) -> anyhow::Result<()> {
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

    Ok(())
}

pub(crate) async fn archive(
    session: &Session,
    model: ModelArg,
    version: Option<u32>,
    format: Format,
) -> anyhow::Result<()> {
    let (name, version) = model.exact(version)?;
    let request = pb::ArchiveModelVersionRequest { name, version };
    let version = session
        .registry()
        .archive_model_version(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    versions_table(std::slice::from_ref(&version)).print(format);

    Ok(())
}

pub(crate) async fn set_threshold(
    session: &Session,
    model: ModelArg,
    values: Vec<String>,
    format: Format,
) -> anyhow::Result<()> {
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

    Ok(())
}

pub(crate) async fn set_reference(
    session: &Session,
    model: ModelArg,
    values: Vec<String>,
    format: Format,
) -> anyhow::Result<()> {
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

    Ok(())
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

pub(crate) fn versions_table(versions: &[pb::ModelVersion]) -> Table {
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

pub(crate) fn show(version: &pb::ModelVersion, format: Format) {
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
