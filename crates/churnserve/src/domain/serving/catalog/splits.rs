//! The catalog's traffic splits: setting and reading one, building an alias's split at a
//! refresh, and routing a scoring request through it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use churn_registry::{Actor, NewTrafficSplit, TrafficArm, TrafficSplit, VersionRef};

use super::{AliasBehind, AliasEntry, AliasTarget, Catalog};
use crate::domain::error::ServiceError;
use crate::domain::serving::served::{ModelSelector, ServedModel, alias_or_production};
use crate::domain::serving::splits::{Route, RouteTarget, ServedSplit};

#[derive(Debug, Clone)]
pub(super) enum SplitTarget {
    Loaded(Arc<ServedSplit>),
    /// Lazy loading: the arms load when a request needs them.
    Arms {
        salt: String,
        arms: Vec<TrafficArm>,
    },
}

impl AliasEntry {
    /// The versions this alias holds in memory: its target and its split's arms.
    pub(super) fn loaded(&self) -> Vec<Arc<ServedModel>> {
        let mut loaded = match &self.target {
            AliasTarget::Loaded(served) => vec![Arc::clone(served)],
            AliasTarget::Version { .. } => Vec::new(),
        };
        if let Some(SplitTarget::Loaded(split)) = &self.split {
            loaded.extend(split.arms.iter().cloned());
        }
        loaded
    }
}

impl Catalog {
    /// The version that answers `customer_id`: through a split, their arm's (the first
    /// arm's for a customer without an id).
    pub async fn resolve_for(
        &self,
        selector: &ModelSelector,
        customer_id: &str,
    ) -> Result<Arc<ServedModel>, ServiceError> {
        let route = self.route(selector).await?;
        Ok(match &route.target {
            RouteTarget::Split(split) if !customer_id.is_empty() => {
                Arc::clone(&split.arms[split.arm_of(customer_id)])
            }
            _ => Arc::clone(route.baseline()),
        })
    }

    /// What answers a scoring request: the version it names, or its alias's version or
    /// split, with the alias it came through.
    pub async fn route(&self, selector: &ModelSelector) -> Result<Route, ServiceError> {
        let name = self.model_name(&selector.name);
        let VersionRef::Alias(alias) = &selector.version else {
            return Ok(Route {
                alias: Arc::clone(&self.by_number),
                target: RouteTarget::Version(self.resolve(selector).await?),
            });
        };
        let entry = self
            .aliases
            .load()
            .get(name)
            .and_then(|aliases| aliases.get(alias))
            .cloned();
        let Some(entry) = entry else {
            return Ok(Route {
                alias: Arc::from(alias.as_str()),
                target: RouteTarget::Version(self.alias_target(name, selector, None).await?),
            });
        };
        let target = match entry.split {
            Some(SplitTarget::Loaded(split)) => RouteTarget::Split(split),
            Some(SplitTarget::Arms { salt, arms }) => {
                let mut loaded = Vec::with_capacity(arms.len());
                for arm in arms {
                    loaded.push((self.load(name, arm.version).await?, arm.weight));
                }
                RouteTarget::Split(Arc::new(ServedSplit::new(salt, loaded)))
            }
            None => RouteTarget::Version(
                self.alias_target(name, selector, Some(entry.target))
                    .await?,
            ),
        };
        Ok(Route {
            alias: entry.alias,
            target,
        })
    }

    /// Splits an alias between versions once every arm has loaded and scored a synthetic
    /// row, so that the swap never fails a request.
    pub async fn set_traffic_split(
        &self,
        split: NewTrafficSplit,
        actor: &Actor,
    ) -> Result<TrafficSplit, ServiceError> {
        // The registry's own checks (field by field) come first: they say what is wrong
        // with the request before any version is loaded.
        let split = self
            .registry
            .check_traffic_split(&split)
            .await
            .map(|()| split)?;
        for arm in &split.arms {
            self.load(&split.name, arm.version).await?;
        }
        let set = self.registry.set_traffic_split(&split, actor).await?;
        self.refresh().await?;
        Ok(set)
    }

    /// The running split of an alias (empty: `production`) of a model (empty: the default).
    pub async fn traffic_split(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<TrafficSplit, ServiceError> {
        Ok(self
            .registry
            .traffic_split(self.model_name(name), alias_or_production(alias))
            .await?)
    }

    /// A split as served: with every arm loaded when aliases load eagerly. An arm that
    /// cannot load leaves the alias serving what it served before, like an alias's target.
    pub(super) async fn split_target(
        &self,
        split: TrafficSplit,
        before: Option<&AliasEntry>,
        behind: &mut Vec<AliasBehind>,
    ) -> SplitTarget {
        let TrafficSplit {
            name,
            alias,
            salt,
            arms,
            ..
        } = split;
        if !self.options.eager_aliases {
            return SplitTarget::Arms { salt, arms };
        }
        let mut loaded = Vec::with_capacity(arms.len());
        for arm in &arms {
            match self.load(&name, arm.version).await {
                Ok(served) => loaded.push((served, arm.weight)),
                Err(error) => {
                    let serving =
                        before
                            .map(|entry| &entry.target)
                            .and_then(|target| match target {
                                AliasTarget::Loaded(served) => Some(served),
                                AliasTarget::Version { .. } => None,
                            });
                    behind.push(self.behind(&name, &alias, serving, arm.version, &error));
                    return match before.and_then(|entry| entry.split.clone()) {
                        Some(previous) => previous,
                        None => SplitTarget::Arms {
                            salt,
                            arms: arms.clone(),
                        },
                    };
                }
            }
        }
        SplitTarget::Loaded(Arc::new(ServedSplit::new(salt, loaded)))
    }

    /// Counts and logs an aliased version that cannot load here.
    pub(super) fn behind(
        &self,
        name: &str,
        alias: &str,
        serving: Option<&Arc<ServedModel>>,
        wanted: u32,
        error: &ServiceError,
    ) -> AliasBehind {
        self.alias_load_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(model = %name, %alias, version = wanted, %error, "aliased version cannot serve");
        AliasBehind {
            name: name.to_owned(),
            alias: alias.to_owned(),
            serving: serving.map(|served| served.version),
            wanted,
            reason: error.to_string(),
        }
    }
}
