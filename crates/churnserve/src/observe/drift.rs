//! Drift counting on this replica. Every scored row of a version is counted, per minute,
//! into the version's fixed bins ([`bins`]); the domain writes the minutes' running counts
//! to the registry, where a report sums them over every replica, and hands back the
//! fleet's indices for the gauges.
//!
//! [`Drift`] keeps one counter per version. A version's first rows open its counter and
//! send a [`BinsRequest`]; whoever reads the registry (the domain) answers with
//! [`Drift::set_bins`] or [`Drift::set_unavailable`]. Rows scored before the answer wait,
//! up to [`PENDING_ROWS`], and are counted in their own minute when it comes. Drift never
//! reads storage or scores anything itself.

pub mod bins;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use churn_engine::{Customer, CustomerBatch, Schema};
use tokio::sync::mpsc;

use crate::sync::lock;
use bins::CountingBins;

/// Rows of a version kept while its bins are on their way; more are not counted.
pub const PENDING_ROWS: usize = 10_000;
/// Minutes of counts a replica keeps while the registry cannot take them.
const UNWRITTEN_MINUTES: usize = 1_440;
const MINUTE_MILLIS: i64 = 60_000;
/// How long a version without bins (no reference dataset) waits before asking again.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(60);
/// How often a counting version asks whether its bins are still the registry's.
const RECHECK_BINS: Duration = Duration::from_secs(60);

/// A version whose bins the counters wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinsRequest {
    pub model: String,
    pub version: u32,
}

/// One minute's running counts of one version on this replica.
#[derive(Debug, Clone)]
pub struct Minute {
    pub start_millis: i64,
    pub bins: Arc<CountingBins>,
    pub rows: u64,
    pub counts: Vec<u64>,
}

/// Counts to write: one minute of one version.
#[derive(Debug, Clone)]
pub struct UnwrittenMinute {
    pub model: String,
    pub version: u32,
    pub minute: Minute,
}

/// A row scored before its version's bins were known.
#[derive(Debug)]
struct PendingRow {
    minute_start: i64,
    customer: Customer,
    score: f64,
}

#[derive(Debug)]
enum Bins {
    Waiting(Vec<PendingRow>),
    Counting(Arc<CountingBins>),
    Unavailable,
}

/// One version's counts on this replica.
#[derive(Debug)]
struct Counter {
    bins: Bins,
    asked_at: Instant,
    /// The minute being counted; written again at every flush while it lasts.
    current: Option<Minute>,
    current_unwritten: bool,
    /// Ended minutes not yet written.
    ended: Vec<Minute>,
    /// The ended minutes' rows in the current bins, by bin, for `/metrics`.
    ended_totals: Vec<u64>,
    dropped_rows: u64,
    scratch: Vec<usize>,
}

impl Counter {
    fn new() -> Counter {
        Counter {
            bins: Bins::Waiting(Vec::new()),
            asked_at: Instant::now(),
            current: None,
            current_unwritten: false,
            ended: Vec::new(),
            ended_totals: Vec::new(),
            dropped_rows: 0,
            scratch: Vec::new(),
        }
    }

    /// The minute starting at `start` in `bins`, ending the one before.
    fn minute(&mut self, start: i64, bins: &Arc<CountingBins>) -> &mut Minute {
        let stale = self
            .current
            .as_ref()
            .is_some_and(|m| m.start_millis != start || !Arc::ptr_eq(&m.bins, bins));
        if stale && let Some(ended) = self.current.take() {
            if Arc::ptr_eq(&ended.bins, bins) {
                add(&mut self.ended_totals, &ended.counts);
            }
            if self.current_unwritten {
                self.ended.push(ended);
                if self.ended.len() > UNWRITTEN_MINUTES {
                    self.ended.remove(0);
                }
            }
        }
        self.current_unwritten = true;
        self.current.get_or_insert_with(|| Minute {
            start_millis: start,
            bins: Arc::clone(bins),
            rows: 0,
            counts: vec![0; bins.len()],
        })
    }

    fn count(
        &mut self,
        schema: &Schema,
        customers: &CustomerBatch,
        scores: &[Option<f64>],
        start: i64,
    ) {
        let bins = match &mut self.bins {
            Bins::Counting(bins) => Arc::clone(bins),
            Bins::Unavailable => return,
            Bins::Waiting(pending) => {
                for (row, score) in scores.iter().enumerate() {
                    let Some(score) = *score else { continue };
                    if pending.len() >= PENDING_ROWS {
                        self.dropped_rows += 1;
                        continue;
                    }
                    pending.push(PendingRow {
                        minute_start: start,
                        customer: customers.customer(row),
                        score,
                    });
                }
                return;
            }
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let minute = self.minute(start, &bins);
        for (row, score) in scores.iter().enumerate() {
            if let Some(score) = *score {
                bins.count_row(
                    schema,
                    customers,
                    row,
                    score,
                    &mut minute.counts,
                    &mut scratch,
                );
                minute.rows += 1;
            }
        }
        self.scratch = scratch;
    }

    /// Counts in `bins` from now on; rows that waited for bins are counted in their own
    /// minutes.
    fn set_bins(&mut self, schema: &Schema, bins: Arc<CountingBins>) {
        if let Bins::Counting(current) = &self.bins
            && current.sha256 == bins.sha256
        {
            return;
        }
        let previous = std::mem::replace(&mut self.bins, Bins::Counting(Arc::clone(&bins)));
        self.ended_totals = vec![0; bins.len()];
        if let Bins::Waiting(pending) = previous {
            for row in pending {
                let customers = CustomerBatch::Rows(vec![row.customer]);
                self.count(schema, &customers, &[Some(row.score)], row.minute_start);
            }
        }
    }

    /// The minutes to write, oldest first; the current one is also counted on.
    fn take_unwritten(&mut self) -> Vec<Minute> {
        let mut minutes = std::mem::take(&mut self.ended);
        if self.current_unwritten
            && let Some(current) = &self.current
        {
            minutes.push(current.clone());
        }
        self.current_unwritten = false;
        minutes
    }

    /// Takes back a minute that could not be written, unless the counter holds a newer
    /// count of it (the minute still running, or ended since with more rows), which the
    /// next flush writes instead.
    fn unwritten(&mut self, minute: Minute) {
        let same = |m: &Minute| m.start_millis == minute.start_millis;
        if self.current.as_ref().is_some_and(same) {
            self.current_unwritten = true;
        } else if !self.ended.iter().any(same) && self.ended.len() < UNWRITTEN_MINUTES {
            self.ended.insert(0, minute);
        }
    }

    /// Every row counted in the current bins since start, by bin.
    fn totals(&self) -> Option<(Arc<CountingBins>, Vec<u64>)> {
        let Bins::Counting(bins) = &self.bins else {
            return None;
        };
        let mut totals = self.ended_totals.clone();
        if let Some(current) = &self.current
            && Arc::ptr_eq(&current.bins, bins)
        {
            add(&mut totals, &current.counts);
        }
        Some((Arc::clone(bins), totals))
    }
}

fn add(totals: &mut [u64], counts: &[u64]) {
    for (total, count) in totals.iter_mut().zip(counts) {
        *total += count;
    }
}

/// The start of the UTC minute holding now.
fn this_minute() -> i64 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    millis - millis.rem_euclid(MINUTE_MILLIS)
}

/// The fleet's indices of one version over the recent window, for the gauges.
#[derive(Debug, Clone)]
pub struct FleetIndices {
    pub rows: u64,
    pub features: Vec<(String, f64)>,
    pub prediction: f64,
}

/// One version's counts since start on this replica, by bin, at a scrape.
#[derive(Debug)]
pub struct ReplicaTotals {
    pub model: String,
    pub version: u32,
    pub bins: Arc<CountingBins>,
    pub totals: Vec<u64>,
}

type SharedCounter = Arc<Mutex<Counter>>;

/// The drift counters of every version scored since start, and the fleet's indices the
/// domain last computed.
#[derive(Debug)]
pub struct Drift {
    /// Off (`--drift-counting off`): nothing is counted on this replica.
    counting: bool,
    /// Model name, then version: a scored batch looks its counter up by borrowed name.
    counters: Mutex<BTreeMap<String, BTreeMap<u32, SharedCounter>>>,
    requests: mpsc::UnboundedSender<BinsRequest>,
    fleet: Mutex<BTreeMap<(String, u32), FleetIndices>>,
}

impl Drift {
    /// The counters, and the requests for bins they will send.
    pub fn new(counting: bool) -> (Drift, mpsc::UnboundedReceiver<BinsRequest>) {
        let (requests, received) = mpsc::unbounded_channel();
        let drift = Drift {
            counting,
            counters: Mutex::default(),
            requests,
            fleet: Mutex::default(),
        };
        (drift, received)
    }

    /// Counts the scored rows of one engine call.
    pub fn observe(
        &self,
        model: &str,
        version: u32,
        schema: &Schema,
        customers: &CustomerBatch,
        scores: &[Option<f64>],
    ) {
        if !self.counting {
            return;
        }
        let counter = self.counter(model, version);
        let mut counter = lock(&counter);
        let retry = match counter.bins {
            Bins::Unavailable => RETRY_UNAVAILABLE,
            Bins::Counting(_) => RECHECK_BINS,
            Bins::Waiting(_) => Duration::MAX,
        };
        if counter.asked_at.elapsed() >= retry {
            counter.asked_at = Instant::now();
            self.ask(model, version);
        }
        counter.count(schema, customers, scores, this_minute());
    }

    pub fn set_bins(&self, model: &str, version: u32, schema: &Schema, bins: Arc<CountingBins>) {
        lock(&self.counter(model, version)).set_bins(schema, bins);
    }

    /// The version cannot be counted (no reference dataset): its waiting rows are dropped
    /// and it asks again a minute later.
    pub fn set_unavailable(&self, model: &str, version: u32) {
        let counter = self.counter(model, version);
        let mut counter = lock(&counter);
        if let Bins::Waiting(pending) = &counter.bins {
            counter.dropped_rows += pending.len() as u64;
        }
        counter.bins = Bins::Unavailable;
    }

    /// Every version's minutes not yet written; the caller writes them or hands them
    /// back with [`Drift::unwritten`].
    pub fn take_unwritten(&self) -> Vec<UnwrittenMinute> {
        self.each_counter()
            .into_iter()
            .flat_map(|(model, version, counter)| {
                lock(&counter)
                    .take_unwritten()
                    .into_iter()
                    .map(move |minute| UnwrittenMinute {
                        model: model.clone(),
                        version,
                        minute,
                    })
            })
            .collect()
    }

    /// Minutes that could not be written, to try again at the next flush (before any newer
    /// count of the same minute).
    pub fn unwritten(&self, minutes: Vec<UnwrittenMinute>) {
        for UnwrittenMinute {
            model,
            version,
            minute,
        } in minutes
        {
            lock(&self.counter(&model, version)).unwritten(minute);
        }
    }

    /// The versions whose rows wait for their bins.
    pub fn waiting(&self) -> Vec<(String, u32)> {
        self.each_counter()
            .into_iter()
            .filter(|(_, _, counter)| matches!(lock(counter).bins, Bins::Waiting(_)))
            .map(|(model, version, _)| (model, version))
            .collect()
    }

    /// Rows that were scored but could not be counted, since start.
    pub fn dropped_rows(&self) -> u64 {
        self.each_counter()
            .iter()
            .map(|(_, _, counter)| lock(counter).dropped_rows)
            .sum()
    }

    /// Every counting version's rows on this replica since start, by bin.
    pub fn replica_totals(&self) -> Vec<ReplicaTotals> {
        self.each_counter()
            .into_iter()
            .filter_map(|(model, version, counter)| {
                let (bins, totals) = lock(&counter).totals()?;
                Some(ReplicaTotals {
                    model,
                    version,
                    bins,
                    totals,
                })
            })
            .collect()
    }

    /// The fleet's indices, as the domain last computed them.
    pub fn set_fleet(&self, fleet: BTreeMap<(String, u32), FleetIndices>) {
        *lock(&self.fleet) = fleet;
    }

    pub fn fleet(&self) -> BTreeMap<(String, u32), FleetIndices> {
        lock(&self.fleet).clone()
    }

    fn each_counter(&self) -> Vec<(String, u32, SharedCounter)> {
        lock(&self.counters)
            .iter()
            .flat_map(|(model, versions)| {
                versions
                    .iter()
                    .map(move |(version, c)| (model.clone(), *version, Arc::clone(c)))
            })
            .collect()
    }

    /// The version's counter; opening it asks for its bins.
    fn counter(&self, model: &str, version: u32) -> SharedCounter {
        let mut counters = lock(&self.counters);
        if let Some(counter) = counters.get(model).and_then(|v| v.get(&version)) {
            return Arc::clone(counter);
        }
        let counter = Arc::new(Mutex::new(Counter::new()));
        counters
            .entry(model.to_owned())
            .or_default()
            .insert(version, Arc::clone(&counter));
        self.ask(model, version);
        counter
    }

    fn ask(&self, model: &str, version: u32) {
        // Nobody listening means nobody can read bins: rows wait, then are dropped.
        let _ = self.requests.send(BinsRequest {
            model: model.to_owned(),
            version,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::bins::{BinLayout, DriftBins, FeatureBins};
    use super::*;

    fn bins() -> Arc<CountingBins> {
        let prediction = FeatureBins {
            name: "prediction".to_owned(),
            layout: BinLayout::Numeric { edges: vec![0.5] },
            reference_counts: vec![1, 1, 0],
        };
        let bins = DriftBins {
            features: Vec::new(),
            prediction,
        };
        Arc::new(CountingBins::new(bins, "sha".to_owned()))
    }

    fn count(counter: &mut Counter, start: i64, bins: &Arc<CountingBins>, rows: u64) {
        let minute = counter.minute(start, bins);
        minute.rows += rows;
        minute.counts[0] += rows;
    }

    #[test]
    fn a_failed_write_never_brings_back_an_older_count_of_a_minute() {
        let bins = bins();
        let mut counter = Counter::new();
        counter.bins = Bins::Counting(Arc::clone(&bins));
        count(&mut counter, 0, &bins, 2);
        let failed = counter.take_unwritten();
        assert_eq!(failed.len(), 1);
        // More rows in that minute, then the next minute starts: the first ends with 5.
        count(&mut counter, 0, &bins, 3);
        count(&mut counter, MINUTE_MILLIS, &bins, 1);
        counter.unwritten(failed[0].clone());
        let written: Vec<(i64, u64)> = counter
            .take_unwritten()
            .iter()
            .map(|m| (m.start_millis, m.rows))
            .collect();
        assert_eq!(written, [(0, 5), (MINUTE_MILLIS, 1)]);

        // A failed write of the running minute marks it to be written again, once.
        let failed = counter.take_unwritten();
        assert!(failed.is_empty(), "nothing new since: {failed:?}");
        count(&mut counter, MINUTE_MILLIS, &bins, 1);
        let failed = counter.take_unwritten();
        counter.unwritten(failed[0].clone());
        let again = counter.take_unwritten();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].start_millis, again[0].rows), (MINUTE_MILLIS, 2));
    }

    #[test]
    fn totals_for_metrics_add_ended_minutes_to_the_running_one() {
        let bins = bins();
        let mut counter = Counter::new();
        counter.bins = Bins::Counting(Arc::clone(&bins));
        counter.ended_totals = vec![0; bins.len()];
        count(&mut counter, 0, &bins, 2);
        count(&mut counter, MINUTE_MILLIS, &bins, 3);
        let (_, totals) = counter.totals().expect("counting");
        assert_eq!(totals, [5, 0, 0]);
    }
}
