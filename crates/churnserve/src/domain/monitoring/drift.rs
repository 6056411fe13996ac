//! Drift exact across replicas. A version's bins are fixed from its reference dataset by
//! whichever replica first needs them and kept in the registry; every replica counts its
//! scored rows into them (`observe::drift`), and this service writes those counts, per
//! minute, to the registry, where a report sums any range over every replica.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use churn_engine::CustomerBatch;
use churn_registry::{
    DatasetRecord, DriftBinsRecord, DriftBucket, Registry, VersionRef, now_millis, sha256_hex,
};
use tokio::sync::mpsc;

use crate::domain::error::ServiceError;
use crate::domain::monitoring::performance::{DAY_MILLIS, utc};
use crate::domain::records::datasets::Datasets;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::ModelSelector;
use crate::observe::drift::bins::{CountingBins, DriftBins};
use crate::observe::drift::{BinsRequest, Drift, FleetIndices};
use crate::sync::lock;

const MINUTE_MILLIS: i64 = 60_000;

/// Which rows of which version a report reads: scored in `[since, until)`, at the
/// resolution of a minute.
#[derive(Debug, Clone)]
pub struct DriftRequest {
    pub selector: ModelSelector,
    pub since_millis: i64,
    pub until_millis: i64,
}

/// One bin of a feature: its reference share and the rows the fleet counted in it.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftBin {
    pub label: String,
    pub reference_fraction: f64,
    pub serving_count: u64,
}

/// One feature's (or the probability's) index and bins.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDrift {
    pub feature: String,
    /// NaN without serving rows.
    pub psi: f64,
    pub bins: Vec<DriftBin>,
}

/// The fleet's drift of one version over a range.
#[derive(Debug, Clone)]
pub struct DriftReport {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub rows: u64,
    pub features: Vec<FeatureDrift>,
    pub prediction: FeatureDrift,
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// How often this replica writes its counts.
    pub flush_every: Duration,
    /// The recent window of the gauges and the console.
    pub window: Duration,
    /// Counts older than this many days are deleted.
    pub retention_days: u32,
}

/// Bins, counts and reports.
#[derive(Debug)]
pub struct FleetDrift {
    catalog: Arc<Catalog>,
    datasets: Datasets,
    registry: Arc<Registry>,
    drift: Arc<Drift>,
    /// This process's name in the counts: unique per start, so no two writers share a row.
    replica: String,
    settings: DriftSettings,
    /// The bins in use, by version: the same `Arc` for the same bins, so that counters
    /// keep counting into the same minute.
    bins: Mutex<BTreeMap<(String, u32), Arc<CountingBins>>>,
    /// One flush at a time, so that an older snapshot of a minute never lands last.
    flushing: tokio::sync::Mutex<()>,
}

impl FleetDrift {
    pub fn new(
        catalog: Arc<Catalog>,
        datasets: Datasets,
        registry: Arc<Registry>,
        drift: Arc<Drift>,
        settings: DriftSettings,
    ) -> FleetDrift {
        FleetDrift {
            catalog,
            datasets,
            registry,
            drift,
            replica: uuid::Uuid::new_v4().to_string(),
            settings,
            bins: Mutex::default(),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &DriftSettings {
        &self.settings
    }

    /// The version's bins: the registry's when they were computed from its current
    /// reference dataset, else computed now (the same on every replica) and stored. Only
    /// computing them needs the model, which is then loaded if it is not.
    pub async fn bins(&self, name: &str, version: u32) -> Result<Arc<CountingBins>, ServiceError> {
        let reference = self
            .registry
            .version(name, &VersionRef::Number(version))
            .await?
            .metadata
            .reference_dataset;
        if reference.is_empty() {
            return Err(ServiceError::NoReferenceDataset {
                name: name.to_owned(),
                version,
            });
        }
        let dataset = self.datasets.dataset(&reference).await?;
        let stored = self.registry.drift_bins(name, version).await?.filter(|r| {
            r.reference_dataset == dataset.name && r.reference_sha256 == dataset.sha256
        });
        let record = match stored {
            Some(record) => record,
            None => self.compute_bins(name, version, &dataset).await?,
        };
        let key = (name.to_owned(), version);
        if let Some(cached) = lock(&self.bins).get(&key)
            && cached.sha256 == record.bins_sha256
        {
            return Ok(Arc::clone(cached));
        }
        let bins: DriftBins = serde_json::from_str(&record.bins).map_err(|e| {
            ServiceError::TaskFailed(format!("the stored drift bins do not read back: {e}"))
        })?;
        let counting = Arc::new(CountingBins::new(bins, record.bins_sha256));
        lock(&self.bins).insert(key, Arc::clone(&counting));
        Ok(counting)
    }

    /// Bins from the reference rows the version scores, stored for every replica.
    async fn compute_bins(
        &self,
        name: &str,
        version: u32,
        dataset: &DatasetRecord,
    ) -> Result<DriftBinsRecord, ServiceError> {
        let served = self
            .catalog
            .resolve(&ModelSelector::by_number(name, version))
            .await?;
        let (customers, _) = self
            .datasets
            .dataset_customers(&served, dataset, dataset.rows as usize)
            .await?;
        let bins = tokio::task::spawn_blocking(move || reference_bins(&served.model, customers))
            .await
            .map_err(|e| ServiceError::TaskFailed(e.to_string()))??;
        let json =
            serde_json::to_string(&bins).map_err(|e| ServiceError::TaskFailed(e.to_string()))?;
        let record = DriftBinsRecord {
            name: name.to_owned(),
            version,
            reference_dataset: dataset.name.clone(),
            reference_sha256: dataset.sha256.clone(),
            bins_sha256: sha256_hex(json.as_bytes()),
            bins: json,
            created_at_millis: now_millis(),
        };
        self.registry.store_drift_bins(&record).await?;
        Ok(record)
    }

    /// Writes this replica's unwritten minutes; they wait for the next flush if the
    /// registry refuses them.
    pub async fn flush(&self) -> Result<(), ServiceError> {
        let _one_at_a_time = self.flushing.lock().await;
        let minutes = self.drift.take_unwritten();
        if minutes.is_empty() {
            return Ok(());
        }
        let buckets: Vec<DriftBucket> = minutes
            .iter()
            .map(|m| DriftBucket {
                name: m.model.clone(),
                version: m.version,
                bucket_start_millis: m.minute.start_millis,
                replica: self.replica.clone(),
                bins_sha256: m.minute.bins.sha256.clone(),
                rows: m.minute.rows,
                counts: m.minute.counts.clone(),
            })
            .collect();
        if let Err(error) = self.registry.write_drift_buckets(&buckets).await {
            self.drift.unwritten(minutes);
            return Err(error.into());
        }
        Ok(())
    }

    /// The fleet's drift of a version over a range, this replica's latest counts
    /// included.
    pub async fn report(&self, request: DriftRequest) -> Result<DriftReport, ServiceError> {
        if request.until_millis < request.since_millis {
            return Err(ServiceError::InvalidRequest(format!(
                "until: {} is before since {}; expected until at or after since",
                utc(request.until_millis),
                utc(request.since_millis)
            )));
        }
        let name = self.catalog.model_name(&request.selector.name).to_owned();
        let record = self
            .registry
            .version(&name, &request.selector.version)
            .await?;
        let bins = self.bins(&name, record.version).await?;
        // Rows this replica scored while the bins were on their way count now.
        if let Some(served) = self
            .catalog
            .loaded()
            .into_iter()
            .find(|s| s.name == name && s.version == record.version)
        {
            self.drift.set_bins(
                &name,
                record.version,
                served.model.schema(),
                Arc::clone(&bins),
            );
        }
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "this replica's latest drift counts could not be written before a report");
        }
        // Every minute that overlaps the range.
        let from = request.since_millis - request.since_millis.rem_euclid(MINUTE_MILLIS);
        let totals = self
            .registry
            .sum_drift_buckets(
                &name,
                record.version,
                &bins.sha256,
                from,
                request.until_millis,
                bins.len(),
            )
            .await?;
        let features = bins
            .bins
            .features
            .iter()
            .chain([&bins.bins.prediction])
            .enumerate()
            .map(|(i, feature)| {
                let start = bins.offset(i);
                let counts = &totals.counts[start..start + feature.layout.bins()];
                let reference_rows: u64 = feature.reference_counts.iter().sum();
                FeatureDrift {
                    feature: feature.name.clone(),
                    psi: churn_metrics::psi(counts, &feature.reference_counts),
                    bins: feature
                        .layout
                        .labels()
                        .into_iter()
                        .zip(&feature.reference_counts)
                        .zip(counts)
                        .map(|((label, &reference), &serving_count)| DriftBin {
                            label,
                            reference_fraction: reference as f64 / reference_rows.max(1) as f64,
                            serving_count,
                        })
                        .collect(),
                }
            });
        let mut features: Vec<FeatureDrift> = features.collect();
        let prediction = features.pop().expect("the probability's bins come last");
        Ok(DriftReport {
            name,
            version: record.version,
            sha256: record.sha256,
            rows: totals.rows,
            features,
            prediction,
        })
    }

    /// Each version the fleet scored in the recent window, with its drift over it.
    pub async fn recent(&self, model: Option<&str>) -> Vec<DriftReport> {
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "this replica's latest drift counts could not be written");
        }
        let now = now_millis();
        let since = now - self.settings.window.as_millis() as i64;
        let versions = match self.registry.drifting_versions(since - MINUTE_MILLIS).await {
            Ok(versions) => versions,
            Err(error) => {
                tracing::warn!(%error, "the recent drift could not be read");
                return Vec::new();
            }
        };
        let mut reports = Vec::new();
        for (name, version) in versions {
            if model.is_some_and(|m| m != name) {
                continue;
            }
            let request = DriftRequest {
                selector: ModelSelector::by_number(name.as_str(), version),
                since_millis: since,
                until_millis: now,
            };
            match self.report(request).await {
                Ok(report) => reports.push(report),
                Err(error) => tracing::debug!(%name, version, %error, "no recent drift"),
            }
        }
        reports
    }

    /// Writes the counts one last time, as the server stops: rows still waiting for their
    /// version's bins are counted first.
    pub async fn close(&self) {
        for (model, version) in self.drift.waiting() {
            self.answer(BinsRequest { model, version }).await;
        }
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "the last drift counts could not be written");
        }
    }

    /// Answers a counter's request for bins.
    async fn answer(&self, request: BinsRequest) {
        let BinsRequest { model, version } = request;
        let served = self
            .catalog
            .resolve(&ModelSelector::by_number(model.as_str(), version))
            .await;
        let bins = match served {
            Ok(served) => self.bins(&model, version).await.map(|bins| (served, bins)),
            Err(error) => Err(error),
        };
        match bins {
            Ok((served, bins)) => self
                .drift
                .set_bins(&model, version, served.model.schema(), bins),
            Err(error) => {
                tracing::info!(%model, version, reason = %error, "drift is not counted");
                self.drift.set_unavailable(&model, version);
            }
        }
    }

    async fn refresh_gauges(&self) {
        let fleet = self
            .recent(None)
            .await
            .into_iter()
            .map(|report| {
                let key = (report.name.clone(), report.version);
                let indices = FleetIndices {
                    rows: report.rows,
                    features: report
                        .features
                        .into_iter()
                        .map(|f| (f.feature, f.psi))
                        .collect(),
                    prediction: report.prediction.psi,
                };
                (key, indices)
            })
            .collect();
        self.drift.set_fleet(fleet);
    }

    async fn sweep(&self) {
        let before = now_millis() - i64::from(self.settings.retention_days) * DAY_MILLIS;
        if let Err(error) = self.registry.delete_drift_buckets_before(before).await {
            tracing::warn!(%error, "old drift counts could not be deleted");
        }
    }
}

/// The bins of a version from its reference rows, the rows it cannot score left out.
fn reference_bins(
    model: &churn_engine::Model,
    customers: Vec<churn_engine::Customer>,
) -> Result<DriftBins, ServiceError> {
    let predictions = model.predict(&customers)?;
    let mut kept = Vec::with_capacity(customers.len());
    let mut scores = Vec::with_capacity(customers.len());
    for (customer, prediction) in customers.into_iter().zip(predictions) {
        if let Ok(prediction) = prediction {
            kept.push(customer);
            scores.push(prediction.churn_probability);
        }
    }
    Ok(DriftBins::from_reference(
        model.schema(),
        &CustomerBatch::Rows(kept),
        &scores,
    ))
}

/// Answers bins requests, writes the counts every `flush_every`, refreshes the gauges and
/// deletes old counts. The server writes the counts one last time when it stops.
pub async fn run(fleet: Arc<FleetDrift>, mut requests: mpsc::UnboundedReceiver<BinsRequest>) {
    let mut flush = tokio::time::interval(fleet.settings.flush_every);
    let mut sweep = tokio::time::interval(Duration::from_secs(3_600));
    loop {
        tokio::select! {
            Some(request) = requests.recv() => {
                let fleet = Arc::clone(&fleet);
                tokio::spawn(async move { fleet.answer(request).await });
            }
            _ = flush.tick() => {
                if let Err(error) = fleet.flush().await {
                    tracing::warn!(%error, "drift counts could not be written; retrying at the next flush");
                }
                fleet.refresh_gauges().await;
            }
            _ = sweep.tick() => fleet.sweep().await,
        }
    }
}
