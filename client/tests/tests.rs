//! Integration tests of ferry-client: the library against a minimal in-process server built
//! on the protocol machine, and the `ferry` binary end to end.
