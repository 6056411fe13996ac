//! The standard process series (resident and virtual memory, CPU time, open and maximum
//! file descriptors, start time), read from `/proc/self` at scrape time as the Prometheus
//! client libraries do. Where `/proc` is absent (not Linux) the series are left out.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::encoding::encode_one;

/// Kernel clock ticks per second in `/proc/self/stat` (USER_HZ, fixed at 100 in the
/// Linux ABI).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub struct ProcessCollector {
    start_time_seconds: f64,
}

impl ProcessCollector {
    pub fn new() -> ProcessCollector {
        ProcessCollector {
            start_time_seconds: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// What `/proc/self/stat` says now.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: f64,
    virtual_bytes: f64,
}

/// Reads `/proc/self/stat`: fields 14 and 15 (user and system ticks) and 23 (virtual
/// size in bytes), counted after the parenthesised command name, which may itself hold
/// spaces.
fn parse_stat(stat: &str) -> Option<Reading> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Reading {
        cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
        virtual_bytes: field(23)?,
    })
}

/// Resident memory from `/proc/self/status` (`VmRSS`, in kB): no page size to assume.
fn resident_bytes(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kilobytes: f64 = line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kilobytes * 1024.0)
}

/// The soft limit on open files, from `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_one(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            ConstGauge::new(self.start_time_seconds),
        )?;
        let Some(reading) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| parse_stat(&stat))
        else {
            return Ok(());
        };
        encode_one(
            &mut encoder,
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds.",
            ConstCounter::new(reading.cpu_seconds),
        )?;
        if let Some(resident) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| resident_bytes(&status))
        {
            encode_one(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size, in bytes.",
                ConstGauge::new(resident),
            )?;
        }
        encode_one(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size, in bytes.",
            ConstGauge::new(reading.virtual_bytes),
        )?;
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            encode_one(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors.",
                ConstGauge::new(entries.count() as i64),
            )?;
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| max_open_files(&limits))
        {
            encode_one(
                &mut encoder,
                "process_max_fds",
                "Maximum open file descriptors.",
                ConstGauge::new(max),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with spaces and a parenthesis, then fields 3 to 24.
        let stat =
            "4242 (churn serve) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 123456789 300";
        assert_eq!(
            parse_stat(stat),
            Some(Reading {
                cpu_seconds: 3.0,
                virtual_bytes: 123_456_789.0,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            resident_bytes("Name:\tchurnserve\nVmRSS:\t   2048 kB\n"),
            Some(2048.0 * 1024.0)
        );
    }

    #[test]
    fn the_open_files_limit_is_the_soft_one() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
    }

    #[test]
    fn this_process_reads_as_itself() {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("linux");
        let status = std::fs::read_to_string("/proc/self/status").expect("linux");
        let reading = parse_stat(&stat).expect("parses");
        let resident = resident_bytes(&status).expect("parses");
        assert!(
            resident > 0.0 && reading.virtual_bytes >= resident,
            "{reading:?} {resident}"
        );
    }
}
