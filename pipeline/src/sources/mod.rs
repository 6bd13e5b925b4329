//! Sources both roles can use: `file` (tail files) and `otlp` (receive OTLP/HTTP).

pub mod file;
pub mod otlp;
