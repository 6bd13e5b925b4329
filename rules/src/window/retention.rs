//! How far back the rules read: what the window store must keep. A selector needs its range
//! (or the lookback) plus a positive offset; a subquery its range plus what its inner
//! expression needs at the subquery's earliest step. `@` may name any time; only the offset is
//! counted for it (the store serves a recent window, not history).

use promql_parser::parser::{Expr, Offset};

use crate::promql::eval::duration_millis;

fn positive_offset(offset: &Option<Offset>) -> i64 {
    match offset {
        Some(Offset::Pos(d)) => duration_millis(*d),
        _ => 0,
    }
}

/// Milliseconds before the evaluation time that `expr` reads.
pub fn window_of(expr: &Expr, lookback_ms: i64) -> i64 {
    match expr {
        Expr::VectorSelector(vs) => lookback_ms + positive_offset(&vs.offset),
        Expr::MatrixSelector(ms) => duration_millis(ms.range) + positive_offset(&ms.vs.offset),
        Expr::Subquery(sq) => {
            duration_millis(sq.range)
                + positive_offset(&sq.offset)
                + window_of(&sq.expr, lookback_ms)
        }
        Expr::Aggregate(a) => {
            let param = a.param.as_ref().map_or(0, |p| window_of(p, lookback_ms));
            window_of(&a.expr, lookback_ms).max(param)
        }
        Expr::Unary(u) => window_of(&u.expr, lookback_ms),
        Expr::Binary(b) => window_of(&b.lhs, lookback_ms).max(window_of(&b.rhs, lookback_ms)),
        Expr::Paren(p) => window_of(&p.expr, lookback_ms),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .map(|a| window_of(a, lookback_ms))
            .max()
            .unwrap_or(0),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_longest_reach_of_an_expression() {
        let w = |q: &str| super::window_of(&crate::promql::parse(q).unwrap(), 300_000);
        assert_eq!(w("up"), 300_000);
        assert_eq!(w("rate(x[10m] offset 5m) / y"), 900_000);
        assert_eq!(w("max_over_time(rate(x[1m])[30m:1m])"), 1_860_000);
        assert_eq!(w("vector(1)"), 0);
    }
}
