//! Sinks both roles can use: `otlp` (the agent's way to the collector, and a general OTLP
//! exporter), and the local ones that need no cloud: `file`, `console`, `blackhole`.

pub mod blackhole;
pub mod console;
pub mod file;
pub mod otlp;
