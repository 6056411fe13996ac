//! Arguments several commands share: which version (`Target`) and `name=value` pairs.

use churn_api::v1 as pb;
use clap::Args;

use crate::reference::ModelArg;

/// Which version: NAME, NAME@ALIAS, NAME/VERSION, models:/NAME@ALIAS or
/// models:/NAME/VERSION, or the flags; `production` by default.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The model; empty: the server's default model.
    #[arg(value_name = "MODEL", default_value = "")]
    pub(crate) model: ModelArg,
    /// Exact version (same as MODEL/VERSION).
    #[arg(long, conflicts_with = "alias")]
    pub(crate) version: Option<u32>,
    /// Alias, such as `production` or `challenger` (same as MODEL@ALIAS).
    #[arg(long)]
    pub(crate) alias: Option<String>,
}

impl Target {
    pub(crate) fn model_ref(&self) -> anyhow::Result<Option<pb::ModelRef>> {
        let model = self.model.with_flags(self.version, self.alias.as_deref())?;
        Ok(Some(model.to_proto()))
    }
}

/// A retention campaign's economics, priced in every evaluation as its expected maximum
/// profit (EMPC); each flag left out takes the server's default.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Campaign {
    /// Customer lifetime value: what a retained churner is worth [default: 200].
    #[arg(long, value_name = "VALUE")]
    pub(crate) clv: Option<f64>,
    /// What the retention offer costs per customer who accepts it [default: 10].
    #[arg(long, value_name = "COST")]
    pub(crate) incentive_cost: Option<f64>,
    /// What contacting one customer costs [default: 1].
    #[arg(long, value_name = "COST")]
    pub(crate) contact_cost: Option<f64>,
    /// Alpha of the Beta distribution of the share of contacted churners who accept [default: 6].
    #[arg(long, value_name = "ALPHA")]
    pub(crate) acceptance_alpha: Option<f64>,
    /// Beta of that distribution [default: 14].
    #[arg(long, value_name = "BETA")]
    pub(crate) acceptance_beta: Option<f64>,
}

impl Campaign {
    /// The request's parameters; 0 on the wire means the default, so a 0 given here is
    /// refused rather than silently replaced.
    pub(crate) fn to_proto(self) -> anyhow::Result<Option<pb::ProfitParameters>> {
        let flags = [
            ("--clv", self.clv),
            ("--incentive-cost", self.incentive_cost),
            ("--contact-cost", self.contact_cost),
            ("--acceptance-alpha", self.acceptance_alpha),
            ("--acceptance-beta", self.acceptance_beta),
        ];
        if flags.iter().all(|(_, value)| value.is_none()) {
            return Ok(None);
        }
        if let Some((flag, _)) = flags.iter().find(|(_, value)| *value == Some(0.0)) {
            anyhow::bail!(
                "{flag} 0: the server reads 0 as \"the default\"; leave the flag out for the default, or give a positive value"
            );
        }
        let value = |v: Option<f64>| v.unwrap_or(0.0);
        Ok(Some(pb::ProfitParameters {
            clv: value(self.clv),
            incentive_cost: value(self.incentive_cost),
            contact_cost: value(self.contact_cost),
            acceptance_alpha: value(self.acceptance_alpha),
            acceptance_beta: value(self.acceptance_beta),
        }))
    }
}

pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not name=value"))
}
