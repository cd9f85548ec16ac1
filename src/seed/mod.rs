//! Data for trying Rookery out (`rookery seed-demo`) and for measuring it
//! (`rookery bench seed`). Both write through the domain, or in bulk where the
//! domain would take hours, and both are idempotent.

pub mod bench;
pub mod demo;
