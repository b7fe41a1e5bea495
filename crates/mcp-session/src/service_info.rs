//! [`ServiceInfo`]: the name, version and replica that probes, logs and the
//! `health_check` tool report, fixed when the server binds.

use std::time::Instant;

/// Who is serving: the service (as its handler reports it in
/// `serverInfo`), its version, this replica, and since when.
#[derive(Debug, Clone)]
pub(crate) struct ServiceInfo {
    /// The service's name (`serverInfo.name`).
    pub(crate) name: String,
    /// The service's version (`serverInfo.version`).
    pub(crate) version: String,
    /// This replica's id (`REPLICA_ID`, else the pod name).
    pub(crate) replica_id: String,
    /// When the server was bound (for uptime).
    pub(crate) started: Instant,
}
