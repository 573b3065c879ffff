//! Integration tests of the simulator, in one binary.

mod cli;
mod crash;
mod deterministic;
mod object_store;
mod sabotage;
mod sockets;
