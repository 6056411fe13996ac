//! Datasets: labelled CSV files registered by unique name, their records, and their rows
//! read back (the first ones, or all of them in chunks).

use std::path::PathBuf;

use serde_json::json;

use crate::artifacts::{ArtifactKind, Staged};
use crate::csv_files::{self, CsvSummary};
use crate::records::{Actor, DatasetRecord, DatasetRows, NewDataset};
use crate::rows::{DatasetRow, to_json};
use crate::{Registry, RegistryError, now_millis, validate_name};

impl Registry {
    /// Registers a CSV dataset; names are unique.
    pub async fn upload_dataset(
        &self,
        new: NewDataset,
        staged: Staged,
        actor: &Actor,
    ) -> Result<DatasetRecord, RegistryError> {
        validate_name("dataset name", &new.name)?;
        if self.dataset(&new.name).await.is_ok() {
            return Err(RegistryError::DatasetExists(new.name));
        }
        let summary = csv_files::summarize(
            staged.path().to_path_buf(),
            &new.label_column,
            &new.positive_label,
        )
        .await?;
        let mut staged = staged;
        self.artifacts.upload(&mut staged).await?;
        let inserted = self
            .insert_dataset(&new, &summary, &mut staged, actor)
            .await;
        if inserted.is_err() {
            self.remove_unreferenced(ArtifactKind::Dataset, staged.sha256())
                .await?;
        }
        self.artifacts.discard(staged).await;
        inserted?;
        self.dataset(&new.name).await
    }

    async fn insert_dataset(
        &self,
        new: &NewDataset,
        summary: &CsvSummary,
        staged: &mut Staged,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let (sha256, now) = (staged.sha256().to_owned(), now_millis());
        self.change(actor, async |change| {
        sqlx::query(
            "INSERT INTO datasets (name, label_column, positive_label, description, rows, positives, columns, sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&new.name)
        .bind(&new.label_column)
        .bind(&new.positive_label)
        .bind(&new.description)
        .bind(summary.rows as i64)
        .bind(summary.positives as i64)
        .bind(to_json(&summary.columns))
        .bind(&sha256)
        .bind(now)
        .execute(change.db())
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.is_unique_violation() => RegistryError::DatasetExists(new.name.clone()),
            _ => e.into(),
        })?;
        change
            .audit(
                "upload_dataset",
                &new.name,
                json!({"sha256": sha256, "rows": summary.rows}),
            )
            .await?;
        self.artifacts.persist(staged).await?;
        Ok(())
        })
        .await
    }

    pub async fn dataset(&self, name: &str) -> Result<DatasetRecord, RegistryError> {
        let row: Option<DatasetRow> = sqlx::query_as("SELECT * FROM datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| RegistryError::DatasetNotFound(name.to_owned()))?
            .into_record()
    }

    pub async fn list_datasets(&self) -> Result<Vec<DatasetRecord>, RegistryError> {
        let rows: Vec<DatasetRow> = sqlx::query_as("SELECT * FROM datasets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(DatasetRow::into_record).collect()
    }

    /// The header and the first `limit` records of a dataset, with each record's outcome.
    pub async fn dataset_rows(
        &self,
        record: &DatasetRecord,
        limit: usize,
    ) -> Result<DatasetRows, RegistryError> {
        csv_files::read_rows(self.dataset_file(record).await?, record.clone(), limit).await
    }

    /// A dataset's records in chunks of `chunk_rows`, read on the blocking pool at most
    /// `ahead` chunks ahead of the receiver: memory stays at a few chunks whatever the
    /// file's size, and the caller does its work on each chunk wherever it likes.
    pub async fn dataset_chunks(
        &self,
        record: &DatasetRecord,
        chunk_rows: usize,
        ahead: usize,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<DatasetRows, RegistryError>>, RegistryError>
    {
        let file = self.dataset_file(record).await?;
        Ok(csv_files::chunks(file, record.clone(), chunk_rows, ahead))
    }

    /// A local copy of a dataset's CSV file (the file itself in a directory store).
    pub async fn dataset_file(&self, record: &DatasetRecord) -> Result<PathBuf, RegistryError> {
        self.artifacts
            .local_file(ArtifactKind::Dataset, &record.sha256)
            .await
    }
}
