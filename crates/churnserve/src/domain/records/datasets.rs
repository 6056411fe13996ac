//! Datasets: uploads, listings, and the one place a stored dataset becomes customers of a
//! version (its columns mapped onto the version's raw features), read whole, as its first
//! rows, or in chunks read ahead on the blocking pool.

use std::sync::Arc;

use churn_engine::{ColumnMapping, Customer};
use churn_registry::{
    Actor, ArtifactKind, DatasetRecord, DatasetRows, NewDataset, Registry, RegistryError, Staged,
    Staging, VersionRef,
};
use tokio::sync::mpsc;

use crate::domain::error::ServiceError;
use crate::domain::serving::served::ServedModel;

/// Rows read ahead of the one being scored while a dataset is scanned.
const SCAN_AHEAD_CHUNKS: usize = 1;

#[derive(Debug, Clone)]
pub struct Datasets {
    registry: Arc<Registry>,
}

impl Datasets {
    pub fn new(registry: Arc<Registry>) -> Datasets {
        Datasets { registry }
    }

    /// A place for an upload's bytes until its registration commits them.
    pub async fn stage(&self, kind: ArtifactKind, limit: u64) -> Result<Staging, ServiceError> {
        Ok(self.registry.stage(kind, limit).await?)
    }

    pub async fn upload_dataset(
        &self,
        dataset: NewDataset,
        staged: Staged,
        actor: &Actor,
    ) -> Result<DatasetRecord, ServiceError> {
        Ok(self.registry.upload_dataset(dataset, staged, actor).await?)
    }

    pub async fn list_datasets(&self) -> Result<Vec<DatasetRecord>, ServiceError> {
        Ok(self.registry.list_datasets().await?)
    }

    pub async fn dataset(&self, name: &str) -> Result<DatasetRecord, ServiceError> {
        Ok(self.registry.dataset(name).await?)
    }

    /// The reference dataset a version names, or why it has none.
    pub async fn reference_dataset(
        &self,
        served: &ServedModel,
    ) -> Result<DatasetRecord, ServiceError> {
        let record = self
            .registry
            .version(&served.name, &VersionRef::Number(served.version))
            .await?;
        let name = record.metadata.reference_dataset;
        if name.is_empty() {
            return Err(ServiceError::NoReferenceDataset {
                name: served.name.clone(),
                version: served.version,
            });
        }
        Ok(self.registry.dataset(&name).await?)
    }

    /// The first `limit` rows of a dataset as customers of this version, by its raw
    /// feature names, with their labels.
    pub async fn dataset_customers(
        &self,
        served: &ServedModel,
        dataset: &DatasetRecord,
        limit: usize,
    ) -> Result<(Vec<Customer>, Vec<bool>), ServiceError> {
        let mapping = column_mapping(served, dataset)?;
        let rows = self.registry.dataset_rows(dataset, limit).await?;
        Ok((customers(&mapping, &rows), rows.churned))
    }

    /// A dataset's rows in chunks of `chunk_rows`, read ahead of the caller on the
    /// blocking pool, to become customers of each of `versions`: every version is checked
    /// against the dataset's columns before the first row is read.
    pub async fn scan_dataset(
        &self,
        versions: &[Arc<ServedModel>],
        dataset: &DatasetRecord,
        chunk_rows: usize,
    ) -> Result<DatasetScan, ServiceError> {
        let mappings = versions
            .iter()
            .map(|served| column_mapping(served, dataset))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DatasetScan {
            mappings: Arc::new(mappings),
            rows: self
                .registry
                .dataset_chunks(dataset, chunk_rows, SCAN_AHEAD_CHUNKS)
                .await?,
        })
    }
}

/// A dataset being read chunk by chunk for several versions.
#[derive(Debug)]
pub struct DatasetScan {
    mappings: Arc<Vec<ColumnMapping>>,
    rows: mpsc::Receiver<Result<DatasetRows, RegistryError>>,
}

impl DatasetScan {
    /// The next chunk, or `None` after the last.
    pub async fn next(&mut self) -> Option<Result<DatasetChunk, ServiceError>> {
        let read = self.rows.recv().await?;
        Some(read.map_err(ServiceError::from).map(|rows| DatasetChunk {
            rows,
            mappings: Arc::clone(&self.mappings),
        }))
    }
}

/// One chunk of a scan, as read: turning it into customers is CPU work for the blocking
/// pool.
#[derive(Debug)]
pub struct DatasetChunk {
    rows: DatasetRows,
    mappings: Arc<Vec<ColumnMapping>>,
}

impl DatasetChunk {
    pub fn labels(&self) -> &[bool] {
        &self.rows.churned
    }

    /// The chunk's rows as customers of each version, in the order the versions were
    /// given.
    pub fn customers(&self) -> Vec<Vec<Customer>> {
        self.mappings
            .iter()
            .map(|mapping| customers(mapping, &self.rows))
            .collect()
    }
}

/// How a dataset's columns feed a version's raw features; the missing features when
/// they do not.
fn column_mapping(
    served: &ServedModel,
    dataset: &DatasetRecord,
) -> Result<ColumnMapping, ServiceError> {
    ColumnMapping::new(served.model.schema(), &dataset.columns, None).map_err(|missing| {
        ServiceError::DatasetMismatch {
            dataset: dataset.name.clone(),
            model: served.name.clone(),
            version: served.version,
            missing,
        }
    })
}

fn customers(mapping: &ColumnMapping, rows: &DatasetRows) -> Vec<Customer> {
    rows.rows
        .iter()
        .map(|fields| mapping.customer(fields))
        .collect()
}
