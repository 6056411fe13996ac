//! How a command names a model, the same way everywhere: `NAME`, `NAME@ALIAS`,
//! `NAME/VERSION`, or the MLflow-style `models:/NAME@ALIAS` and `models:/NAME/VERSION`.

use std::fmt;
use std::str::FromStr;

use anyhow::bail;
use churn_api::v1 as pb;

/// A model reference as typed on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelArg {
    pub name: String,
    pub version: Option<u32>,
    pub alias: Option<String>,
}

impl FromStr for ModelArg {
    type Err = String;

    fn from_str(text: &str) -> Result<ModelArg, String> {
        let body = text.strip_prefix("models:/").unwrap_or(text);
        let expected = || {
            format!(
                "{text:?} is not a model reference; expected NAME, NAME@ALIAS, NAME/VERSION, models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        };
        let (name, version, alias) = if let Some((name, alias)) = body.split_once('@') {
            (name, None, Some(alias.to_owned()))
        } else if let Some((name, version)) = body.rsplit_once('/') {
            let version = version
                .parse::<u32>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("{}: the version must be a number from 1", expected()))?;
            (name, Some(version), None)
        } else {
            (body, None, None)
        };
        let invalid_alias = alias
            .as_deref()
            .is_some_and(|a| a.is_empty() || a.contains(['/', '@']));
        if name.contains(['/', '@'])
            || invalid_alias
            || (text.starts_with("models:/") && name.is_empty())
        {
            return Err(expected());
        }
        Ok(ModelArg {
            name: name.to_owned(),
            version,
            alias,
        })
    }
}

impl fmt::Display for ModelArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "models:/{}", self.name)?;
        match (&self.version, &self.alias) {
            (Some(version), _) => write!(f, "/{version}"),
            (None, Some(alias)) => write!(f, "@{alias}"),
            (None, None) => Ok(()),
        }
    }
}

impl ModelArg {
    /// The reference with `--version` / `--alias` flags folded in; naming the version in
    /// both places is an error.
    pub fn with_flags(
        &self,
        version: Option<u32>,
        alias: Option<&str>,
    ) -> anyhow::Result<ModelArg> {
        let mut merged = self.clone();
        if version.is_some() || alias.is_some() {
            if self.version.is_some() || self.alias.is_some() {
                bail!("{self} already names a version; drop --version/--alias");
            }
            merged.version = version;
            merged.alias = alias.map(str::to_owned);
        }
        Ok(merged)
    }

    /// The wire form: no version and no alias means `production`.
    pub fn to_proto(&self) -> pb::ModelRef {
        pb::ModelRef {
            name: self.name.clone(),
            version: self.version.unwrap_or(0),
            alias: self.alias.clone().unwrap_or_default(),
        }
    }

    /// The name of a command that acts on a whole model; a version or alias is an error.
    pub fn name_only(&self) -> anyhow::Result<String> {
        if self.version.is_some() || self.alias.is_some() {
            bail!("{self}: this command takes a model name, without a version or alias");
        }
        Ok(self.name.clone())
    }

    /// The exact version of a command that changes one version: from the reference
    /// (`models:/NAME/VERSION`) or from `version`, not both.
    pub fn exact(&self, version: Option<u32>) -> anyhow::Result<(String, u32)> {
        if self.alias.is_some() {
            bail!("{self}: this command changes one version; name it as models:/NAME/VERSION");
        }
        match (self.version, version) {
            (Some(_), Some(_)) => {
                bail!("{self} already names a version; drop the VERSION argument")
            }
            (Some(v), None) | (None, Some(v)) => Ok((self.name.clone(), v)),
            (None, None) => bail!("{self}: which version? name it as models:/NAME/VERSION"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelArg, String> {
        text.parse()
    }

    #[test]
    fn every_form_names_the_same_model() {
        let alias = ModelArg {
            name: "telco".into(),
            version: None,
            alias: Some("challenger".into()),
        };
        assert_eq!(parse("models:/telco@challenger"), Ok(alias.clone()));
        assert_eq!(parse("telco@challenger"), Ok(alias));
        let version = ModelArg {
            name: "telco".into(),
            version: Some(3),
            alias: None,
        };
        assert_eq!(parse("models:/telco/3"), Ok(version.clone()));
        assert_eq!(parse("telco/3"), Ok(version.clone()));
        assert_eq!(version.to_string(), "models:/telco/3");
        assert_eq!(
            parse("telco").map(|m| m.to_proto().name),
            Ok("telco".into())
        );
        assert_eq!(parse(""), Ok(ModelArg::default()));
    }

    #[test]
    fn malformed_references_say_what_is_expected() {
        for bad in [
            "models:/telco/x",
            "telco/0",
            "models:/",
            "telco@",
            "a/b/3",
            "models:/t@a@b",
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(error.contains("models:/NAME/VERSION"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_version_is_named_once() {
        let reference = parse("models:/telco/3").unwrap();
        assert!(reference.with_flags(Some(2), None).is_err());
        assert_eq!(reference.exact(None).unwrap(), ("telco".into(), 3));
        assert!(reference.exact(Some(3)).is_err());
        assert_eq!(
            parse("telco").unwrap().exact(Some(2)).unwrap(),
            ("telco".into(), 2)
        );
        assert!(parse("telco@production").unwrap().exact(None).is_err());
        assert!(reference.name_only().is_err());
    }
}
