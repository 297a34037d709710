//! Integration tests: one binary, shared helpers in `common`.

mod common;
mod extract;
mod foundation;
mod insight;
mod load;
mod mirror;
mod pipeline;
mod sim;
mod status;
mod transform;
