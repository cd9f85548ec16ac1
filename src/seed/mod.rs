//! Data for trying Rookery out (`rookery seed-demo`: through the domain, and
//! idempotent) and for measuring it (`rookery seed-bench`: in bulk with
//! `COPY`, where the domain would take hours, into a database with no users
//! yet).

pub mod bench;
pub mod demo;
