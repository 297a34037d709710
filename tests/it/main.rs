//! Integration tests: one binary, shared helpers in `common`.

mod common;
mod extract;
mod foundation;
mod sim;
