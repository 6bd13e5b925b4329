//! The components every role has, named once: [`role_sources!`](crate::role_sources) and
//! [`role_sinks!`](crate::role_sinks) declare a role's closed enums with them and the role's
//! own.

/// Declares a role's closed enum of sources: the sources every role has (`otlp`, `file`,
/// `xray_udp`), named here once, then the role's own. The enum is the `type:`-tagged config
/// of a source, with [`AsSource`].
#[macro_export]
macro_rules! role_sources {
    ($vis:vis enum $name:ident { $($variant:ident($ty:ty)),* $(,)? }) => {
        $crate::closed_enum!(source, $vis enum $name {
            Otlp($crate::sources::otlp::OtlpSourceConfig),
            File($crate::sources::file::FileSourceConfig),
            XrayUdp($crate::sources::xray_udp::XRayUdpSourceConfig),
            $($variant($ty),)*
        });
    };
}

/// Declares a role's closed enum of sinks: the sinks every role has (`otlp`, `file`, `console`,
/// `blackhole`), named here once, then the role's own; with [`AsSink`].
#[macro_export]
macro_rules! role_sinks {
    ($vis:vis enum $name:ident { $($variant:ident($ty:ty)),* $(,)? }) => {
        $crate::closed_enum!(sink, $vis enum $name {
            Otlp($crate::sinks::otlp::OtlpSinkConfig),
            File($crate::sinks::file::FileSinkConfig),
            Console($crate::sinks::console::ConsoleSinkConfig),
            Blackhole($crate::sinks::blackhole::BlackholeSinkConfig),
            $($variant($ty),)*
        });
    };
}

/// The enum behind [`role_sources!`] and [`role_sinks!`].
#[doc(hidden)]
#[macro_export]
macro_rules! closed_enum {
    (@enum $vis:vis enum $name:ident { $($variant:ident($ty:ty),)* }) => {
        // Parsed once per (re)load and kept in a map: the size of a variant does not matter.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
        $vis enum $name {
            $($variant($ty),)*
        }
    };
    (source, $vis:vis enum $name:ident { $($variant:ident($ty:ty),)* }) => {
        $crate::closed_enum!(@enum $vis enum $name { $($variant($ty),)* });
        impl $crate::component::AsSource for $name {
            fn source(&self) -> &dyn $crate::component::SourceConfig {
                match self {
                    $($name::$variant(c) => c,)*
                }
            }
        }
    };
    (sink, $vis:vis enum $name:ident { $($variant:ident($ty:ty),)* }) => {
        $crate::closed_enum!(@enum $vis enum $name { $($variant($ty),)* });
        impl $crate::component::AsSink for $name {
            fn sink(&self) -> &dyn $crate::component::SinkConfig {
                match self {
                    $($name::$variant(c) => c,)*
                }
            }
        }
    };
}
