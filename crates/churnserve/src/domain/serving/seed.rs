//! First start: an empty registry gets the Telco models compiled into this binary, as
//! two versions of `telco-churn`, with `production` on the better one on hold-out data
//! (the logistic regression: ROC AUC 0.858 against LightGBM's 0.854, see models/README.md),
//! and the hold-out customers as dataset `telco-holdout`, the reference both versions are
//! explained against.

use churn_registry::{Actor, ArtifactKind, NewDataset, Registry};

use crate::domain::error::ServiceError;
use crate::domain::records::datasets::Datasets;
use crate::domain::serving::catalog::{Catalog, Registration};

/// The name the bundled models are registered under.
pub const BUNDLED_MODEL: &str = "telco-churn";

struct Bundled {
    bytes: &'static [u8],
    description: &'static str,
    aliases: &'static [&'static str],
}

const BUNDLED: &[Bundled] = &[
    Bundled {
        bytes: include_bytes!("../../../../../models/telco-logreg.onnx"),
        description: "Telco churn: scikit-learn logistic regression pipeline (models/train.py, telco-logreg.onnx)",
        aliases: &["production"],
    },
    Bundled {
        bytes: include_bytes!("../../../../../models/telco-lgbm.onnx"),
        description: "Telco churn: LightGBM on a dense tensor (models/train.py, telco-lgbm.onnx)",
        aliases: &["challenger"],
    },
];

/// The dataset the bundled versions are explained against.
pub const REFERENCE_DATASET: &str = "telco-holdout";
const REFERENCE_CSV: &[u8] = include_bytes!("../../../../../models/data/test.csv");

/// Registers the bundled models if the registry has no model at all; of replicas starting
/// together on a new registry, only the first seeds it.
pub async fn seed_if_empty(
    catalog: &Catalog,
    registry: &Registry,
    datasets: &Datasets,
) -> Result<(), ServiceError> {
    let actor = Actor("churnserve seed".to_owned());
    if !registry.claim_seeding(&actor).await? {
        return Ok(());
    }
    if datasets.dataset(REFERENCE_DATASET).await.is_err() {
        let mut staging = datasets
            .stage(ArtifactKind::Dataset, REFERENCE_CSV.len() as u64)
            .await?;
        staging.write(REFERENCE_CSV).await?;
        let dataset = NewDataset {
            name: REFERENCE_DATASET.to_owned(),
            label_column: "churn".to_owned(),
            positive_label: "Yes".to_owned(),
            description: "Telco churn hold-out customers (models/data/test.csv)".to_owned(),
        };
        datasets
            .upload_dataset(dataset, staging.finish().await?, &actor)
            .await?;
    }
    for bundled in BUNDLED {
        let mut staging = datasets
            .stage(ArtifactKind::Model, bundled.bytes.len() as u64)
            .await?;
        staging.write(bundled.bytes).await?;
        let registration = Registration {
            name: BUNDLED_MODEL.to_owned(),
            description: bundled.description.to_owned(),
            tags: [("source".to_owned(), "bundled".to_owned())].into(),
            aliases: bundled.aliases.iter().map(|a| (*a).to_owned()).collect(),
            reference_dataset: REFERENCE_DATASET.to_owned(),
            ..Registration::default()
        };
        let record = catalog
            .register(registration, staging.finish().await?, &actor)
            .await?;
        tracing::info!(model = %record.name, version = record.version, aliases = ?record.aliases, "seeded bundled model");
    }
    Ok(())
}
