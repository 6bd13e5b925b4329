//! Running a role: the [`topology`] that builds, wires, reloads and stops components, their
//! supervision ([`supervise`]), the components every role has ([`roles`]), the [`admin`]
//! listener (`/metrics`, `/healthz`, `/readyz`) and [`logging`].
//!
//! Depends on everything below it; nothing depends on it.

pub mod admin;
pub mod logging;
pub mod roles;
pub mod supervise;
pub mod topology;
