//! Alertmanager's routing tree (`route:` of an Alertmanager configuration, the same keys): an
//! alert descends into the first child route that matches it — and into later matching
//! siblings while the matched one says `continue: true` — and lands in every deepest route
//! that matched (the node itself when no child does). Children inherit `receiver`,
//! `group_by` and the three timings. Defaults are Alertmanager's: group_wait 30s,
//! group_interval 5m, repeat_interval 4h.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::matcher::{MatchOp, Matcher, Matchers};
use crate::duration::parse_duration;
use crate::labels::Labels;

/// `route:` as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    pub group_wait: Option<String>,
    #[serde(default)]
    pub group_interval: Option<String>,
    #[serde(default)]
    pub repeat_interval: Option<String>,
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Legacy equality matchers.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Legacy regex matchers.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// How alerts are grouped: by these labels, or by all of them (`group_by: ['...']`).
#[derive(Clone, Debug, PartialEq)]
pub enum GroupBy {
    Labels(Vec<String>),
    All,
}

impl GroupBy {
    /// The labels of `alert` that name its group.
    pub fn group_labels(&self, alert: &Labels) -> Labels {
        match self {
            GroupBy::All => alert.clone(),
            GroupBy::Labels(names) => alert.keep_only(names),
        }
    }
}

/// A route with what it inherited, ready to match.
#[derive(Clone, Debug)]
pub struct Route {
    /// Alertmanager's route key: the parent's key, this route's matchers and its position.
    pub key: String,
    /// Its position in [`Route::walk`]'s order.
    pub index: usize,
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
    matchers: Matchers,
    continue_matching: bool,
    routes: Vec<Route>,
}

struct Inherited {
    receiver: Option<String>,
    group_by: Option<GroupBy>,
    group_wait_ms: i64,
    group_interval_ms: i64,
    repeat_interval_ms: i64,
}

impl Route {
    /// Compiles the tree; every problem named with its path (`route.routes[1].matchers`).
    pub fn compile(config: &RouteConfig) -> Result<Route, Vec<String>> {
        let inherited = Inherited {
            receiver: None,
            group_by: None,
            group_wait_ms: 30_000,
            group_interval_ms: 300_000,
            repeat_interval_ms: 4 * 3_600_000,
        };
        let mut errors = Vec::new();
        if config.receiver.is_none() {
            errors.push("route.receiver: the root route needs a receiver".to_string());
        }
        if !config.matchers.is_empty() || !config.match_eq.is_empty() {
            errors.push("route: the root route must not have matchers".to_string());
        }
        let mut count = 0;
        let route = compile_node(
            config,
            &inherited,
            "route",
            "{}".to_string(),
            &mut count,
            &mut errors,
        );
        if errors.is_empty() {
            Ok(route)
        } else {
            Err(errors)
        }
    }

    /// The routes `alert` lands in.
    pub fn matching(&self, alert: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        self.collect(alert, &mut out);
        out
    }

    fn collect<'a>(&'a self, alert: &Labels, out: &mut Vec<&'a Route>) {
        if !self.matchers.matches(alert) {
            return;
        }
        let before = out.len();
        for child in &self.routes {
            let found = out.len();
            child.collect(alert, out);
            if out.len() > found && !child.continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
    }

    /// Every route of the tree, parents before children (the order of [`Route::index`]).
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for child in &self.routes {
            out.extend(child.walk());
        }
        out
    }
}

fn compile_node(
    config: &RouteConfig,
    parent: &Inherited,
    path: &str,
    key: String,
    count: &mut usize,
    errors: &mut Vec<String>,
) -> Route {
    let index = *count;
    *count += 1;
    let mut duration = |field: &str, text: &Option<String>, inherited: i64, min: i64| match text {
        None => inherited,
        Some(text) => match parse_duration(text) {
            Ok(ms) if ms >= min => ms,
            Ok(_) => {
                errors.push(format!("{path}.{field}: must be at least {min}ms"));
                inherited
            }
            Err(e) => {
                errors.push(format!("{path}.{field}: {e}"));
                inherited
            }
        },
    };
    let group_wait_ms = duration("group_wait", &config.group_wait, parent.group_wait_ms, 0);
    let group_interval_ms = duration(
        "group_interval",
        &config.group_interval,
        parent.group_interval_ms,
        1,
    );
    let repeat_interval_ms = duration(
        "repeat_interval",
        &config.repeat_interval,
        parent.repeat_interval_ms,
        1,
    );
    let group_by = match &config.group_by {
        None => parent.group_by.clone(),
        Some(names) if names.iter().any(|n| n == "...") => {
            if names.len() > 1 {
                errors.push(format!(
                    "{path}.group_by: '...' groups by all labels and must stand alone"
                ));
            }
            Some(GroupBy::All)
        }
        Some(names) => {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            Some(GroupBy::Labels(names))
        }
    };
    let mut matchers = match Matchers::parse_all(&config.matchers) {
        Ok(m) => m,
        Err(e) => {
            errors.push(format!("{path}.matchers: {e}"));
            Matchers::default()
        }
    };
    for (legacy, op) in [
        (&config.match_eq, MatchOp::Equal),
        (&config.match_re, MatchOp::Regex),
    ] {
        for (name, value) in legacy {
            match Matcher::new(name, op, value) {
                Ok(m) => matchers.0.push(m),
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
    }
    let receiver = config.receiver.clone().or_else(|| parent.receiver.clone());
    let here = Inherited {
        receiver: receiver.clone(),
        group_by: group_by.clone(),
        group_wait_ms,
        group_interval_ms,
        repeat_interval_ms,
    };
    let routes = config
        .routes
        .iter()
        .enumerate()
        .map(|(i, child)| {
            let child_key = format!("{key}/{}/{i}", matchers_key(child));
            compile_node(
                child,
                &here,
                &format!("{path}.routes[{i}]"),
                child_key,
                count,
                errors,
            )
        })
        .collect();
    Route {
        key,
        index,
        receiver: receiver.unwrap_or_default(),
        group_by: group_by.unwrap_or(GroupBy::Labels(Vec::new())),
        group_wait_ms,
        group_interval_ms,
        repeat_interval_ms,
        matchers,
        continue_matching: config.continue_matching,
        routes,
    }
}

/// A route's matchers as text, for its key.
fn matchers_key(config: &RouteConfig) -> String {
    let mut parts: Vec<String> = config.matchers.clone();
    parts.extend(config.match_eq.iter().map(|(k, v)| format!("{k}={v:?}")));
    parts.extend(config.match_re.iter().map(|(k, v)| format!("{k}=~{v:?}")));
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Route {
        let config: RouteConfig = serde_yaml_ng::from_str(yaml).unwrap();
        Route::compile(&config).unwrap()
    }

    fn receivers(route: &Route, pairs: &[(&str, &str)]) -> Vec<String> {
        route
            .matching(&Labels::from_pairs(pairs.iter().copied()))
            .iter()
            .map(|r| r.receiver.clone())
            .collect()
    }

    const TREE: &str = r#"
receiver: default
group_by: [alertname]
group_wait: 10s
routes:
  - matchers: ['severity="critical"']
    receiver: pagerduty
    continue: true
    group_wait: 0s
  - matchers: ['severity=~"critical|warning"']
    receiver: slack
    routes:
      - match: {team: db}
        receiver: db-slack
  - match_re: {service: "api|web"}
    receiver: frontend
"#;

    #[test]
    fn an_alert_lands_in_the_first_match_and_continues_only_where_told() {
        let route = tree(TREE);
        assert_eq!(
            receivers(&route, &[("severity", "critical")]),
            ["pagerduty", "slack"]
        );
        assert_eq!(
            receivers(&route, &[("severity", "warning"), ("team", "db")]),
            ["db-slack"]
        );
        // slack matched without continue: frontend is not tried.
        assert_eq!(
            receivers(&route, &[("severity", "warning"), ("service", "api")]),
            ["slack"]
        );
        assert_eq!(receivers(&route, &[("service", "web")]), ["frontend"]);
        assert_eq!(receivers(&route, &[("severity", "info")]), ["default"]);
    }

    #[test]
    fn children_inherit_grouping_and_timings_and_keys_are_distinct() {
        let route = tree(TREE);
        let all = route.walk();
        assert_eq!(all.len(), 5);
        let pagerduty = all.iter().find(|r| r.receiver == "pagerduty").unwrap();
        assert_eq!(pagerduty.group_wait_ms, 0);
        assert_eq!(pagerduty.group_interval_ms, 300_000);
        assert_eq!(
            pagerduty.group_by,
            GroupBy::Labels(vec!["alertname".into()])
        );
        let db = all.iter().find(|r| r.receiver == "db-slack").unwrap();
        assert_eq!(db.group_wait_ms, 10_000);
        assert!(all.iter().enumerate().all(|(i, r)| r.index == i));
        let mut keys: Vec<_> = all.iter().map(|r| r.key.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let config: RouteConfig = serde_yaml_ng::from_str(
            "group_wait: soon\nroutes:\n  - matchers: ['a=~\"(\"']\n  - group_by: ['...', x]\n",
        )
        .unwrap();
        let errors = Route::compile(&config).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("route.receiver"));
        assert!(errors.iter().any(|e| e.starts_with("route.group_wait")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("route.routes[0].matchers")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("route.routes[1].group_by")));
    }
}
