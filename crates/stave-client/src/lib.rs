//! The Rust client for Stave (in progress).
