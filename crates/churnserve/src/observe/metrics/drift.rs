//! The drift families at scrape time: the fleet's indices over the recent window, as the
//! domain last computed them, and this replica's rows by bin since start, which
//! Prometheus users can sum across replicas themselves. The labels are bounded: a bin is
//! one of its version's fixed bins.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::encoding::{encode_family, encode_one};
use super::{Escaped, VersionLabels};
use crate::observe::drift::Drift;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FeatureLabels {
    model: Escaped,
    version: u32,
    feature: Escaped,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BinLabels {
    model: Escaped,
    version: u32,
    feature: Escaped,
    bin: Escaped,
}

impl Collector for Drift {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fleet = self.fleet();
        let feature = |model: &str, version: u32, feature: &str| FeatureLabels {
            model: Escaped(model.to_owned()),
            version,
            feature: Escaped(feature.to_owned()),
        };
        encode_family(
            &mut encoder,
            "churn_feature_psi",
            "Population stability index of each raw feature over the recent window, on every replica, against the reference dataset.",
            fleet.iter().flat_map(|((model, version), indices)| {
                indices
                    .features
                    .iter()
                    .map(move |(name, psi)| (feature(model, *version, name), ConstGauge::new(*psi)))
            }),
        )?;
        encode_family(
            &mut encoder,
            "churn_score_psi",
            "Population stability index of the churn probability over the recent window, on every replica, against the reference dataset.",
            fleet.iter().map(|((model, version), indices)| {
                (
                    VersionLabels::new(model, *version),
                    ConstGauge::new(indices.prediction),
                )
            }),
        )?;
        encode_family(
            &mut encoder,
            "churn_drift_window_rows",
            "Rows scored over the recent window, on every replica.",
            fleet.iter().map(|((model, version), indices)| {
                (
                    VersionLabels::new(model, *version),
                    ConstGauge::new(indices.rows as i64),
                )
            }),
        )?;
        let totals = self.replica_totals();
        encode_family(
            &mut encoder,
            "churn_drift_bin_rows",
            "Rows this replica scored since start, by drift bin of each feature (feature \"prediction\": of the churn probability, after the features).",
            totals.iter().flat_map(|replica| {
                let bins = &replica.bins.bins;
                bins.features
                    .iter()
                    .chain([&bins.prediction])
                    .enumerate()
                    .flat_map(move |(i, feature)| {
                        let start = replica.bins.offset(i);
                        feature
                            .layout
                            .labels()
                            .into_iter()
                            .zip(&replica.totals[start..])
                            .map(move |(bin, count)| {
                                (
                                    BinLabels {
                                        model: Escaped(replica.model.clone()),
                                        version: replica.version,
                                        feature: Escaped(feature.name.clone()),
                                        bin: Escaped(bin),
                                    },
                                    ConstCounter::new(*count),
                                )
                            })
                    })
            }),
        )?;
        encode_one(
            &mut encoder,
            "churn_drift_rows_dropped",
            "Scored rows drift could not count: waiting for their version's bins past the bound, or of a version without a reference dataset.",
            ConstCounter::new(self.dropped_rows()),
        )
    }
}
