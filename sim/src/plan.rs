//! What each simulated client does: a plan of operations drawn from the seed.
//!
//! Every client owns the names under `c<client>/`, so it can predict exactly what the server
//! must hold for them; a few shared names (`shared/<n>`) are written by everyone, without
//! overwrite, only to exercise `InProgress` and `AlreadyExists`.

use ferry_protocol::{ErrorCode, HASH_UNIT_LEN};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::content::ContentId;

/// The generator every seeded choice of the simulator is drawn from.
pub type SimRng = Xoshiro256PlusPlus;

/// A generator for one purpose (`stream`) of one client (`client`) of the run `seed`, so that
/// adding draws in one place never shifts the draws of another.
pub fn rng_for(seed: u64, client: u64, stream: u64) -> SimRng {
    let mut mix = blake3::Hasher::new();
    mix.update(&seed.to_le_bytes());
    mix.update(&client.to_le_bytes());
    mix.update(&stream.to_le_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&mix.finalize().as_bytes()[..8]);
    SimRng::seed_from_u64(u64::from_le_bytes(bytes))
}

/// How a hostile client misbehaves; each kind has one error the server must answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostileKind {
    /// Declares a size, then sends more bytes than that.
    SizeLieOver,
    /// Declares a size, sends fewer bytes, then says it is done.
    SizeLieUnder,
    /// Sends every byte but a wrong digest.
    WrongDigest,
    /// Sends garbage instead of the magic.
    GarbageMagic,
    /// Sends a garbage frame after the handshake.
    GarbageFrame,
    /// Connects and never says anything.
    SilentHandshake,
    /// Completes the handshake, then goes silent.
    SilentIdle,
}

impl HostileKind {
    /// Every kind, in a fixed order.
    pub const ALL: [HostileKind; 7] = [
        HostileKind::SizeLieOver,
        HostileKind::SizeLieUnder,
        HostileKind::WrongDigest,
        HostileKind::GarbageMagic,
        HostileKind::GarbageFrame,
        HostileKind::SilentHandshake,
        HostileKind::SilentIdle,
    ];

    /// The error code the server must answer this misbehaviour with.
    pub fn expected_code(self) -> ErrorCode {
        match self {
            HostileKind::SizeLieOver | HostileKind::SizeLieUnder => ErrorCode::SizeMismatch,
            HostileKind::WrongDigest => ErrorCode::DigestMismatch,
            HostileKind::GarbageMagic => ErrorCode::NotFerry,
            HostileKind::GarbageFrame => ErrorCode::MalformedFrame,
            HostileKind::SilentHandshake | HostileKind::SilentIdle => ErrorCode::Timeout,
        }
    }

    /// Short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            HostileKind::SizeLieOver => "hostile_size_lie_over",
            HostileKind::SizeLieUnder => "hostile_size_lie_under",
            HostileKind::WrongDigest => "hostile_wrong_digest",
            HostileKind::GarbageMagic => "hostile_garbage_magic",
            HostileKind::GarbageFrame => "hostile_garbage_frame",
            HostileKind::SilentHandshake => "hostile_silent_handshake",
            HostileKind::SilentIdle => "hostile_silent_idle",
        }
    }

    /// Whether the misbehaviour is an upload whose name must stay invisible.
    pub fn uploads(self) -> bool {
        matches!(
            self,
            HostileKind::SizeLieOver | HostileKind::SizeLieUnder | HostileKind::WrongDigest
        )
    }
}

/// One step of a client's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Upload generated content under one of the client's own names.
    Put {
        /// Name.
        name: String,
        /// Content.
        content: ContentId,
        /// Replace an existing file.
        overwrite: bool,
    },
    /// Download one of the client's own names.
    Get {
        /// Name.
        name: String,
    },
    /// List the client's own names.
    List {
        /// Prefix (`c<client>/`).
        prefix: String,
    },
    /// Remove one of the client's own names.
    Remove {
        /// Name.
        name: String,
    },
    /// Upload a few small files at once, without overwrite, pipelined on one connection (a
    /// window of eager uploads): mostly new names of the client's own, now and then one it
    /// wrote before (refused inside the window if it still exists). Each file is judged like
    /// a [`Op::Put`] without overwrite.
    PutMany {
        /// Name and content of each file; no name twice, no two contents alike.
        files: Vec<(String, ContentId)>,
    },
    /// Upload to a name every client writes, without overwrite: stored, or refused with
    /// `AlreadyExists` or `InProgress`.
    PutShared {
        /// Name.
        name: String,
        /// Content.
        content: ContentId,
    },
    /// Misbehave; the server must answer with [`HostileKind::expected_code`].
    Hostile {
        /// How.
        kind: HostileKind,
        /// Name used if the misbehaviour is an upload.
        name: String,
        /// Content used if the misbehaviour is an upload.
        content: ContentId,
    },
}

impl Op {
    /// Short name for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Op::Put { .. } => "put",
            Op::Get { .. } => "get",
            Op::List { .. } => "list",
            Op::Remove { .. } => "remove",
            Op::PutMany { .. } => "put_many",
            Op::PutShared { .. } => "put_shared",
            Op::Hostile { kind, .. } => kind.label(),
        }
    }
}

/// The shape of the plans drawn for a run.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// Fewest steps per client.
    pub min_steps: u32,
    /// Most steps per client.
    pub max_steps: u32,
    /// Largest file.
    pub max_size: u64,
    /// Largest "small" file.
    pub small_max: u64,
    /// Chance that a file is "large" (up to `max_size`) rather than small.
    pub large_chance: f64,
    /// Names shared by all clients.
    pub shared_names: u32,
    /// Which hostile kinds may be drawn (empty: none).
    pub hostile_kinds: Vec<HostileKind>,
    /// Chance that a step uploads several small files at once ([`Op::PutMany`]).
    pub many_chance: f64,
    /// Most files of such a step (at least 2).
    pub many_max: u32,
}

impl PlanConfig {
    /// Small plans for the deterministic mode: a few steps, files up to 1.5 MiB but mostly small.
    pub fn deterministic() -> Self {
        PlanConfig {
            min_steps: 3,
            max_steps: 7,
            max_size: 1536 * 1024,
            small_max: HASH_UNIT_LEN + HASH_UNIT_LEN / 4,
            large_chance: 0.02,
            shared_names: 2,
            hostile_kinds: HostileKind::ALL.to_vec(),
            many_chance: 0.1,
            many_max: 8,
        }
    }
}

/// A file size: 0, tiny, around the hash unit, small random, or (rarely) large.
pub fn draw_size(rng: &mut SimRng, config: &PlanConfig) -> u64 {
    let unit = HASH_UNIT_LEN;
    if rng.random_bool(config.large_chance) {
        return rng.random_range(0..=config.max_size);
    }
    match rng.random_range(0..100u32) {
        0..8 => 0,
        8..28 => rng.random_range(1..=64),
        28..48 => {
            let base = unit * rng.random_range(1..=2u64);
            base - 1 + rng.random_range(0..=2u64)
        }
        _ => rng.random_range(1..=config.small_max.clamp(1, config.max_size.max(1))),
    }
}

/// The plan of client `client`: `hostile` clients mix misbehaviour into ordinary steps.
pub fn draw_plan(seed: u64, client: u32, hostile: bool, config: &PlanConfig) -> Vec<Op> {
    let mut rng = rng_for(seed, u64::from(client), 1);
    // Its own stream, so that the batches never shift the other steps' draws.
    let mut many = rng_for(seed, u64::from(client), 5);
    let steps = rng.random_range(config.min_steps..=config.max_steps);
    let own = |k: u32| format!("c{client}/f{k}");
    let mut names: Vec<String> = Vec::new();
    let mut plan = Vec::with_capacity(steps as usize);
    for step in 0..steps {
        let content = ContentId {
            seed,
            client,
            step,
            size: draw_size(&mut rng, config),
        };
        let roll = rng.random_range(0..100u32);
        let hostile_step = hostile && !config.hostile_kinds.is_empty() && roll < 50;
        let op = if !hostile_step && config.many_max >= 2 && many.random_bool(config.many_chance) {
            let files = draw_many(&mut many, config, seed, client, step, &names);
            for (name, _) in &files {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            Op::PutMany { files }
        } else if hostile_step {
            let pick = rng.random_range(0..config.hostile_kinds.len());
            Op::Hostile {
                kind: config.hostile_kinds[pick],
                name: format!("c{client}/x{step}"),
                content: ContentId {
                    size: content.size.max(1),
                    ..content
                },
            }
        } else if names.is_empty() || roll < 40 {
            let name = own(step);
            names.push(name.clone());
            Op::Put {
                name,
                content,
                overwrite: false,
            }
        } else if roll < 50 {
            let name = names[rng.random_range(0..names.len())].clone();
            Op::Put {
                name,
                content,
                overwrite: rng.random_bool(0.8),
            }
        } else if roll < 70 {
            let name = if rng.random_bool(0.9) {
                names[rng.random_range(0..names.len())].clone()
            } else {
                own(steps + step)
            };
            Op::Get { name }
        } else if roll < 78 {
            Op::List {
                prefix: format!("c{client}/"),
            }
        } else if roll < 88 {
            let name = names[rng.random_range(0..names.len())].clone();
            Op::Remove { name }
        } else if config.shared_names > 0 {
            Op::PutShared {
                name: format!("shared/{}", rng.random_range(0..config.shared_names)),
                content,
            }
        } else {
            Op::List {
                prefix: format!("c{client}/"),
            }
        };
        plan.push(op);
    }
    plan
}

/// The files of an [`Op::PutMany`] at `step`: 2 to `many_max` small files, each under a new
/// name `c<client>/m<step>_<k>` or (one time in six) under one of the client's earlier `names`;
/// their sizes differ, so their contents do too.
fn draw_many(
    rng: &mut SimRng,
    config: &PlanConfig,
    seed: u64,
    client: u32,
    step: u32,
    names: &[String],
) -> Vec<(String, ContentId)> {
    let small = PlanConfig {
        large_chance: 0.0,
        ..config.clone()
    };
    let count = rng.random_range(2..=config.many_max);
    let mut files: Vec<(String, ContentId)> = Vec::with_capacity(count as usize);
    for k in 0..count {
        let mut size = draw_size(rng, &small);
        while files.iter().any(|(_, content)| content.size == size) {
            size += 1;
        }
        let earlier = (!names.is_empty() && rng.random_bool(1.0 / 6.0))
            .then(|| names[rng.random_range(0..names.len())].clone())
            .filter(|name| files.iter().all(|(taken, _)| taken != name));
        let name = earlier.unwrap_or_else(|| format!("c{client}/m{step}_{k}"));
        let content = ContentId {
            seed,
            client,
            step,
            size,
        };
        files.push((name, content));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_draws_the_same_plan_and_another_seed_does_not() {
        let config = PlanConfig::deterministic();
        let a = draw_plan(5, 1, true, &config);
        assert_eq!(a, draw_plan(5, 1, true, &config));
        assert_ne!(a, draw_plan(6, 1, true, &config));
    }

    #[test]
    fn batches_hold_small_distinct_files_under_distinct_names() {
        let config = PlanConfig::deterministic();
        let batches: Vec<Vec<(String, ContentId)>> = (0..200)
            .flat_map(|seed| draw_plan(seed, 0, false, &config))
            .filter_map(|op| match op {
                Op::PutMany { files } => Some(files),
                _ => None,
            })
            .collect();
        assert!(batches.len() > 50, "{} batches", batches.len());
        let mut earlier_names = 0;
        for files in &batches {
            assert!((2..=config.many_max as usize).contains(&files.len()));
            for (i, (name, content)) in files.iter().enumerate() {
                // Small enough to go eagerly, right behind its `PUT`.
                assert!(content.size <= 2 * HASH_UNIT_LEN + u64::from(config.many_max));
                assert!(content.size <= ferry_client::EAGER_MAX);
                for (other, other_content) in &files[i + 1..] {
                    assert_ne!(name, other);
                    assert_ne!(content, other_content);
                }
                earlier_names += usize::from(!name.starts_with("c0/m"));
            }
        }
        assert!(earlier_names > 10, "{earlier_names}");
    }

    #[test]
    fn sizes_include_empty_tiny_and_unit_boundaries() {
        let config = PlanConfig::deterministic();
        let mut rng = rng_for(1, 0, 0);
        let sizes: Vec<u64> = (0..2000).map(|_| draw_size(&mut rng, &config)).collect();
        for wanted in [0, HASH_UNIT_LEN - 1, HASH_UNIT_LEN, HASH_UNIT_LEN + 1] {
            assert!(sizes.contains(&wanted), "size {wanted} never drawn");
        }
        assert!(sizes.iter().any(|&s| (1..=64).contains(&s)));
        assert!(sizes.iter().all(|&s| s <= config.max_size));
    }
}
