//! The contract suite of the `DurableEvents` port (work in progress).
