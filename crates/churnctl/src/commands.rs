//! One module per command (or family of subcommands), each with its arguments and what it
//! prints.

pub(crate) mod alias;
pub(crate) mod audit;
pub(crate) mod datasets;
pub(crate) mod drift;
pub(crate) mod evaluate;
pub(crate) mod experiment;
pub(crate) mod explain;
pub(crate) mod models;
pub(crate) mod outcomes;
pub(crate) mod register;
pub(crate) mod score;
pub(crate) mod score_file;
pub(crate) mod shadow;
