//! Deterministic randomness for the targets: split points and made-up file contents drawn from
//! the fuzz input, so that every run reproduces.

/// A small deterministic generator (splitmix64), seeded from the input so runs reproduce.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn from_bytes(data: &[u8]) -> Self {
        // FNV-1a: any change of the input changes the split points.
        let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(super) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A piece length in `1..=left`, mostly small, sometimes everything.
    pub(super) fn piece(&mut self, left: usize) -> usize {
        let left = left.max(1);
        let len = match self.below(4) {
            0 => 1,
            1 => 1 + self.below(8) as usize,
            2 => 1 + self.below(256) as usize,
            _ => left,
        };
        len.min(left)
    }
}

/// Bytes of a made-up file: a pattern that depends on `seed`.
pub(super) fn content(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(7))
                .wrapping_add((i >> 8) as u64) as u8
        })
        .collect()
}
