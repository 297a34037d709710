//! Integration tests: one binary, shared helpers in `common`.

mod auth_traps;
mod certs;
mod common;
mod crash;
mod db_faults;
mod disk_faults;
mod extract;
mod foundation;
mod fuzz;
mod insight;
mod load;
mod mirror;
mod pgcluster;
mod pipeline;
mod reports;
mod sim;
mod soak;
mod status;
mod tls;
mod transform;
