//! Drift across replicas: each version's bins, fixed from its reference dataset, and the
//! per-minute counts every replica writes into them. Unaudited, like the prediction log:
//! the bins are a function of the version and its reference, and the counts are traffic.

use futures_util::TryStreamExt;

use crate::{Registry, RegistryError};

/// A version's drift bins, as JSON the server reads and writes, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftBinsRecord {
    pub name: String,
    pub version: u32,
    pub reference_dataset: String,
    /// The reference dataset's SHA-256 when the bins were computed.
    pub reference_sha256: String,
    pub bins: String,
    pub bins_sha256: String,
    pub created_at_millis: i64,
}

/// One replica's running counts of one version in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftBucket {
    pub name: String,
    pub version: u32,
    pub bucket_start_millis: i64,
    pub replica: String,
    pub bins_sha256: String,
    pub rows: u64,
    /// Every bin's count, in the order of the bins.
    pub counts: Vec<u64>,
}

/// The sum of the buckets of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftTotals {
    pub rows: u64,
    pub counts: Vec<u64>,
    pub buckets: u64,
}

impl Registry {
    /// The version's bins, if any replica has computed them.
    pub async fn drift_bins(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<DriftBinsRecord>, RegistryError> {
        let row = sqlx::query_as::<_, (String, String, String, String, i64)>(
            "SELECT reference_dataset, reference_sha256, bins, bins_sha256, created_at \
             FROM drift_bins WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(reference_dataset, reference_sha256, bins, bins_sha256, created_at_millis)| {
                DriftBinsRecord {
                    name: name.to_owned(),
                    version,
                    reference_dataset,
                    reference_sha256,
                    bins,
                    bins_sha256,
                    created_at_millis,
                }
            },
        ))
    }

    /// Stores the version's bins, replacing bins of an earlier reference. Replicas that
    /// compute them at the same time compute the same bins, so the last write changes
    /// nothing.
    pub async fn store_drift_bins(&self, record: &DriftBinsRecord) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO drift_bins (name, version, reference_dataset, reference_sha256, bins, bins_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name, version) DO UPDATE SET reference_dataset = excluded.reference_dataset, \
             reference_sha256 = excluded.reference_sha256, bins = excluded.bins, \
             bins_sha256 = excluded.bins_sha256, created_at = excluded.created_at",
        )
        .bind(&record.name)
        .bind(i64::from(record.version))
        .bind(&record.reference_dataset)
        .bind(&record.reference_sha256)
        .bind(&record.bins)
        .bind(&record.bins_sha256)
        .bind(record.created_at_millis)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes replicas' running counts, each replacing what its replica wrote for that
    /// minute before, in one transaction.
    pub async fn write_drift_buckets(&self, buckets: &[DriftBucket]) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        for bucket in buckets {
            let counts = serde_json::to_string(&bucket.counts)
                .map_err(|e| RegistryError::Storage(e.to_string()))?;
            sqlx::query(
                "INSERT INTO drift_counts (name, version, bucket_start, replica, bins_sha256, rows, counts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (name, version, bucket_start, replica) DO UPDATE SET \
                 bins_sha256 = excluded.bins_sha256, rows = excluded.rows, counts = excluded.counts",
            )
            .bind(&bucket.name)
            .bind(i64::from(bucket.version))
            .bind(bucket.bucket_start_millis)
            .bind(&bucket.replica)
            .bind(&bucket.bins_sha256)
            .bind(bucket.rows as i64)
            .bind(counts)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The sum over every replica of the buckets counted in bins `bins_sha256` and
    /// starting in `[from_millis, until_millis)`; `bins` counts per bucket.
    pub async fn sum_drift_buckets(
        &self,
        name: &str,
        version: u32,
        bins_sha256: &str,
        from_millis: i64,
        until_millis: i64,
        bins: usize,
    ) -> Result<DriftTotals, RegistryError> {
        let mut rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT rows, counts FROM drift_counts WHERE name = $1 AND version = $2 \
             AND bins_sha256 = $3 AND bucket_start >= $4 AND bucket_start < $5",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(bins_sha256)
        .bind(from_millis)
        .bind(until_millis)
        .fetch(&self.pool);
        let mut totals = DriftTotals {
            counts: vec![0; bins],
            ..DriftTotals::default()
        };
        while let Some((bucket_rows, counts)) = rows.try_next().await? {
            let counts: Vec<u64> = serde_json::from_str(&counts)
                .map_err(|e| RegistryError::Storage(format!("drift counts: {e}")))?;
            if counts.len() != bins {
                return Err(RegistryError::Storage(format!(
                    "drift counts of {name:?} version {version}: {} bins where its bins have {bins}",
                    counts.len()
                )));
            }
            totals.rows += bucket_rows as u64;
            totals.buckets += 1;
            for (total, count) in totals.counts.iter_mut().zip(counts) {
                *total += count;
            }
        }
        Ok(totals)
    }

    /// The versions some replica counted rows of in a bucket starting at or after
    /// `from_millis`.
    pub async fn drifting_versions(
        &self,
        from_millis: i64,
    ) -> Result<Vec<(String, u32)>, RegistryError> {
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT DISTINCT name, version FROM drift_counts WHERE bucket_start >= $1 \
             ORDER BY name, version",
        )
        .bind(from_millis)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, version)| (name, version as u32))
            .collect())
    }

    /// Deletes the buckets that started before `millis`; how many.
    pub async fn delete_drift_buckets_before(&self, millis: i64) -> Result<u64, RegistryError> {
        let deleted = sqlx::query("DELETE FROM drift_counts WHERE bucket_start < $1")
            .bind(millis)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}
