//! Source `prometheus_scrape` (under construction).

pub mod relabel;
pub mod series;
