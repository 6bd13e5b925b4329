//! Which parsed expressions the engine can evaluate: the parser knows Prometheus 3's whole
//! language, the engine the list its issue names (plus the trigonometric functions). Rule
//! files are checked when they load, so an unsupported construct is refused at start-up or
//! reload instead of failing every evaluation.

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::Expr;

use super::eval::SUPPORTED_FUNCTIONS;

/// The aggregation operators the engine computes.
pub(crate) const SUPPORTED_AGGREGATIONS: &[u8] = &[
    T_SUM,
    T_AVG,
    T_MIN,
    T_MAX,
    T_COUNT,
    T_GROUP,
    T_STDDEV,
    T_STDVAR,
    T_TOPK,
    T_BOTTOMK,
    T_QUANTILE,
    T_COUNT_VALUES,
];

/// Ok, or the first construct of `expr` the engine does not evaluate.
pub fn check_supported(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::Aggregate(agg) => {
            if !SUPPORTED_AGGREGATIONS.contains(&agg.op.id()) {
                return Err(format!("aggregation {} is not supported", agg.op));
            }
            if let Some(param) = &agg.param {
                check_supported(param)?;
            }
            check_supported(&agg.expr)
        }
        Expr::Unary(u) => check_supported(&u.expr),
        Expr::Binary(b) => {
            check_supported(&b.lhs)?;
            check_supported(&b.rhs)
        }
        Expr::Paren(p) => check_supported(&p.expr),
        Expr::Subquery(s) => check_supported(&s.expr),
        Expr::Call(call) => {
            if !SUPPORTED_FUNCTIONS.contains(&call.func.name) {
                return Err(format!("function {} is not supported", call.func.name));
            }
            call.args.args.iter().try_for_each(|a| check_supported(a))
        }
        Expr::Extension(_) => Err("extension expressions are not supported".into()),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_3_additions_are_refused_the_listed_ones_accepted() {
        let ok = |q: &str| check_supported(&crate::promql::parse(q).unwrap());
        assert!(ok("sum by (job) (rate(x[5m])) > bool 1 and on() vector(time())").is_ok());
        assert!(ok("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))").is_ok());
        assert_eq!(
            ok("sort_by_label(x, \"a\")"),
            Err("function sort_by_label is not supported".into())
        );
        assert_eq!(
            ok("1 + holt_winters(x[5m], 0.1, 0.1)"),
            Err("function holt_winters is not supported".into())
        );
    }
}
