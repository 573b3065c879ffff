//! Property tests over whole exchanges with ferryd's real session: random operations, sizes and
//! contents move correctly, and the same exchange fed in arbitrary splits (one byte at a time
//! included) gives the same client events and the same server bytes as fed whole.

use ferry_protocol::{Digest, HASH_UNIT_LEN};
use proptest::prelude::*;

use crate::pair::{Outcome, Pair, Split, checkpoint_of, content};

#[derive(Clone, Debug)]
enum Op {
    Put {
        file: usize,
        size: usize,
        overwrite: bool,
    },
    CancelledPut {
        file: usize,
        size: usize,
        after: usize,
    },
    Get {
        file: usize,
        have: usize,
    },
    List,
    Remove {
        file: usize,
    },
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(HASH_UNIT_LEN as usize),
        Just(HASH_UNIT_LEN as usize + 1),
        0usize..5000,
        0usize..700_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..4, sizes(), any::<bool>()).prop_map(|(file, size, overwrite)| Op::Put { file, size, overwrite }),
        1 => (0usize..4, 1usize..700_000, 0usize..400_000)
            .prop_map(|(file, size, after)| Op::CancelledPut { file, size, after: after % size }),
        2 => (0usize..4, 0usize..700_000).prop_map(|(file, have)| Op::Get { file, have }),
        1 => Just(Op::List),
        1 => (0usize..4).prop_map(|file| Op::Remove { file }),
    ]
}

/// Runs `ops` through a pair and checks every outcome against a model of the store.
fn run(ops: &[Op], split: Split) -> Pair {
    let mut pair = Pair::new(split);
    let mut model: [Option<Vec<u8>>; 4] = Default::default();
    for (step, op) in ops.iter().enumerate() {
        let seed = step as u64 * 7919;
        match *op {
            Op::Put {
                file,
                size,
                overwrite,
            } => {
                let data = content(size, seed);
                let outcome = pair.put(&format!("f{file}"), &data, overwrite, true);
                if model[file].is_some() && !overwrite {
                    assert_eq!(
                        outcome,
                        Outcome::Refused(ferry_protocol::ErrorCode::AlreadyExists)
                    );
                } else {
                    assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
                    model[file] = Some(data);
                }
            }
            Op::CancelledPut { file, size, after } => {
                let data = content(size, seed);
                let outcome =
                    pair.put_with(&format!("f{file}"), &data, true, true, false, Some(after));
                assert!(
                    matches!(outcome, Outcome::Cancelled { .. } | Outcome::Stored { .. }),
                    "{outcome:?}"
                );
                if matches!(outcome, Outcome::Stored { .. }) {
                    model[file] = Some(data);
                }
            }
            Op::Get { file, have } => {
                let name = format!("f{file}");
                let checkpoint = match &model[file] {
                    Some(data) => checkpoint_of(&data[..have.min(data.len())]),
                    None => checkpoint_of(&[]),
                };
                let outcome = pair.get(&name, checkpoint.clone());
                match &model[file] {
                    Some(data) => {
                        let offset = checkpoint.offset() as usize;
                        assert_eq!(
                            outcome,
                            Outcome::Downloaded {
                                data: data[offset..].to_vec(),
                                offset: offset as u64,
                                digest: Digest::of(data)
                            }
                        );
                    }
                    None => assert_eq!(
                        outcome,
                        Outcome::Refused(ferry_protocol::ErrorCode::NotFound)
                    ),
                }
            }
            Op::List => {
                let Outcome::Listed(entries) = pair.list("") else {
                    panic!("list failed")
                };
                let expected: Vec<(String, u64)> = model
                    .iter()
                    .enumerate()
                    .filter_map(|(i, d)| d.as_ref().map(|d| (format!("f{i}"), d.len() as u64)))
                    .collect();
                let got: Vec<(String, u64)> =
                    entries.into_iter().map(|e| (e.name, e.size)).collect();
                assert_eq!(got, expected);
            }
            Op::Remove { file } => {
                let outcome = pair.remove(&format!("f{file}"));
                if model[file].take().is_some() {
                    assert_eq!(outcome, Outcome::Removed);
                } else {
                    assert_eq!(
                        outcome,
                        Outcome::Refused(ferry_protocol::ErrorCode::NotFound)
                    );
                }
            }
        }
        for (i, data) in model.iter().enumerate() {
            assert_eq!(
                pair.server.stored(&format!("f{i}")).as_ref(),
                data.as_ref(),
                "store after step {step}"
            );
        }
    }
    pair
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_operations_agree_with_the_model(ops in proptest::collection::vec(op(), 1..10), seed in any::<u64>()) {
        run(&ops, Split::Random { seed, max: 100_000 });
    }

    #[test]
    fn any_split_gives_the_same_events_as_whole(
        ops in proptest::collection::vec(op(), 1..5),
        seed in any::<u64>(),
        max in prop_oneof![Just(1usize), 2usize..16, 16usize..5000],
    ) {
        // one byte at a time is slow for big files: keep this property's files small
        let ops: Vec<Op> = ops.into_iter().map(|op| match op {
            Op::Put { file, size, overwrite } => Op::Put { file, size: size % 3000, overwrite },
            Op::CancelledPut { file, size, after } => Op::CancelledPut { file, size: size % 3000 + 1, after: after % (size % 3000 + 1) },
            Op::Get { file, have } => Op::Get { file, have: have % 3000 },
            other => other,
        }).collect();
        let whole = run(&ops, Split::Whole);
        let split = run(&ops, Split::Random { seed, max });
        prop_assert_eq!(&whole.client_log, &split.client_log);
        prop_assert_eq!(&whole.server.sent, &split.server.sent);
    }
}
