//! The contract suite of the `JobQueue` port (work in progress).
