//! Integration tests: one binary, shared helpers in `common`.

mod common;
mod foundation;
mod insight;
mod sim;
