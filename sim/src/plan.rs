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
        let op = if hostile && !config.hostile_kinds.is_empty() && roll < 50 {
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
