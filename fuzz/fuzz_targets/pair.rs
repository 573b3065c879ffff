#![no_main]

use ferry_server::fuzzing::{PairInput, pair};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: PairInput| pair(input));
