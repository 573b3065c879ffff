//! Integration tests of the simulator, in one binary.

mod deterministic;
