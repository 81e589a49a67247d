//! Integration tests of `stave-log`, one binary (see STYLE.md §1).
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod basics;
mod batch_format;
mod committed;
mod corruption;
mod crash;
mod edge_cases;
mod full_disk;
mod model;
mod power_cut;
mod produced;
mod support;
