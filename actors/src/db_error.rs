//! Telling an unreachable database from a failed statement. The supervisors
//! retry a batch on the first; the HTTP side answers it with a 503.

/// The database could not be reached or dropped the connection: the pool
/// timed out or is closed, the socket or TLS failed, the connection was lost
/// (class 08), or the server ended it, shutting down or starting up (57P).
/// Trying again, on a new connection, may succeed.
pub fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}
