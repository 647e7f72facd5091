//! `rivulet bench`: the seed job measured. `csv` covers the generator and
//! file modes, `mqtt` the end-to-end path through a broker; `rss` is the
//! peak-RSS reading both report.

mod csv;
mod mqtt;
mod rss;
mod scrape;

use crate::cli::{BenchArgs, BenchMode};

pub(crate) fn run(a: &BenchArgs) -> anyhow::Result<()> {
    match a.mode {
        BenchMode::Mqtt => mqtt::run(a),
        BenchMode::Memory | BenchMode::Csv | BenchMode::CsvCheckpoint => csv::run(a),
    }
}
