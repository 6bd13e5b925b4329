//! Sources both roles can use: `file` (tail files), `otlp` (receive OTLP/HTTP) and `xray_udp`
//! (the X-Ray daemon protocol).

pub mod file;
pub mod otlp;
pub mod xray_udp;
