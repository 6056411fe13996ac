//! churnctl against a real server, in one binary: the commands (`commands`), reaching
//! servers over TLS and with tokens (`reach`), and `score-file` (`score_file`).

mod commands;
mod reach;
mod score_file;
