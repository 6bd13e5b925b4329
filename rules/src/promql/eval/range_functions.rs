//! Functions of a range vector, one series at a time: `rate`, `increase`, `delta` (with
//! Prometheus 2.42's extrapolation), `irate`, `idelta`, `deriv`, `predict_linear`, `changes`,
//! `resets` and the `*_over_time` family. Each returns `None` where Prometheus drops the
//! series (too few samples).

use super::aggregate::quantile_of;
use super::Window;
use crate::promql::value::{kahan_add, Point};

/// `rate` (`is_rate`), `increase` (counter, not rate), `delta` (neither).
pub(super) fn extrapolated_rate(
    points: &[Point],
    window: Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut previous = 0.0;
        for p in points {
            if p.v < previous {
                result += previous;
            }
            previous = p.v;
        }
    }
    let mut duration_to_start = (first.t - window.start) as f64 / 1000.0;
    let duration_to_end = (window.end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter does not go below zero: extrapolate no further back than where it would.
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    result *= extrapolate_to / sampled_interval;
    if is_rate {
        result /= window.range_ms as f64 / 1000.0;
    }
    Some(result)
}

/// `irate` (`is_rate`) and `idelta`: from the last two samples.
pub(super) fn instant_value(points: &[Point], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let previous = points[points.len() - 2];
    let mut result = last.v - previous.v;
    if is_rate && last.v < previous.v {
        // A counter reset: the last value is the increase since it.
        result = last.v;
    }
    let interval = last.t - previous.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept, x in seconds from `intercept_time`, with Kahan sums.
pub(super) fn linear_regression(points: &[Point], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].v;
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_add(x, sum_x, c_x);
        (sum_y, c_y) = kahan_add(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_add(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_add(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`.
pub(super) fn deriv(points: &[Point]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    Some(linear_regression(points, points[0].t).0)
}

/// `predict_linear`: the regression's value `seconds` after the evaluation time.
pub(super) fn predict_linear(points: &[Point], eval_time: i64, seconds: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(points, eval_time);
    Some(slope * seconds + intercept)
}

/// `changes`: how often the value changed (NaN to NaN is no change).
pub(super) fn changes(points: &[Point]) -> f64 {
    let mut count = 0u64;
    for pair in points.windows(2) {
        let (previous, current) = (pair[0].v, pair[1].v);
        if current != previous && !(current.is_nan() && previous.is_nan()) {
            count += 1;
        }
    }
    count as f64
}

/// `resets`: how often the value decreased.
pub(super) fn resets(points: &[Point]) -> f64 {
    points
        .windows(2)
        .filter(|pair| pair[1].v < pair[0].v)
        .count() as f64
}

/// The `*_over_time` aggregation named `name`, or `None` for a name that is not one.
pub(super) fn over_time(name: &str, points: &[Point], q: f64) -> Option<f64> {
    Some(match name {
        "avg_over_time" => avg(points),
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in points {
                (sum, c) = kahan_add(p.v, sum, c);
            }
            if sum.is_infinite() {
                sum
            } else {
                sum + c
            }
        }
        "count_over_time" => points.len() as f64,
        "min_over_time" => points.iter().skip(1).fold(points[0].v, |min, p| {
            if p.v < min || min.is_nan() {
                p.v
            } else {
                min
            }
        }),
        "max_over_time" => points.iter().skip(1).fold(points[0].v, |max, p| {
            if p.v > max || max.is_nan() {
                p.v
            } else {
                max
            }
        }),
        "last_over_time" => points[points.len() - 1].v,
        "present_over_time" => 1.0,
        "stdvar_over_time" => variance(points),
        "stddev_over_time" => variance(points).sqrt(),
        "quantile_over_time" => {
            let mut values: Vec<f64> = points.iter().map(|p| p.v).collect();
            quantile_of(q, &mut values)
        }
        _ => return None,
    })
}

fn avg(points: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
    for p in points {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_add(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn variance(points: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_add(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_add(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}
