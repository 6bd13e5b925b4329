//! The error of a component that cannot be built: a setting that is wrong (named by its key
//! path, `collector.sinks.<name>.<setting>`), or I/O that start-up needs and could not do.

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{component}: {message}")]
    Invalid { component: String, message: String },
    #[error("{component}: {source}")]
    Io {
        component: String,
        source: std::io::Error,
    },
}

impl BuildError {
    pub fn invalid(component: &str, message: impl Into<String>) -> Self {
        BuildError::Invalid {
            component: component.to_owned(),
            message: message.into(),
        }
    }

    /// A bad value at `key.field` (`collector.sinks.cwl` and `retention_days`).
    pub fn at(key: &str, field: &str, message: impl std::fmt::Display) -> Self {
        BuildError::Invalid {
            component: format!("{key}.{field}"),
            message: message.to_string(),
        }
    }

    pub fn io(component: &str, source: std::io::Error) -> Self {
        BuildError::Io {
            component: component.to_owned(),
            source,
        }
    }
}
