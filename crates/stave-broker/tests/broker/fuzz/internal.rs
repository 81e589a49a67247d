//! The internal Raft services from a client with no business there.
