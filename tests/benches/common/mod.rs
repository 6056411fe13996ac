//! Measurement helpers shared by the benchmarks.

use std::time::Duration;

pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
}

pub fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn print_latency(label: &str, latency: &Latency) {
    println!(
        "  {label}p50 {:8.1} us   p99 {:8.1} us",
        micros(latency.p50),
        micros(latency.p99)
    );
}
