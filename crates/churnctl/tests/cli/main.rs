//! churnctl against a real server, in one binary: the commands (`commands`), reaching
//! servers over TLS and with tokens (`reach`), `score-file` (`score_file`), experiments
//! (`experiments`) and targeting a retention campaign (`targeting`).

mod commands;
mod experiments;
mod reach;
mod score_file;
mod targeting;
