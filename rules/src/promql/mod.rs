//! PromQL: parsing (the `promql-parser` crate) and evaluation (ours, in `eval`), over any
//! [`Storage`].

pub mod eval;
pub mod storage;
pub mod support;
pub mod value;

pub use eval::{instant_query, range_query, EvalError, EvalOptions};
pub use promql_parser::parser::Expr;
pub use storage::{MemoryStorage, Storage};
pub use value::{Point, Sample, Series, Value};

/// Parses a PromQL expression; the message is the parser's.
pub fn parse(query: &str) -> Result<Expr, String> {
    promql_parser::parser::parse(query)
}
