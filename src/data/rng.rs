//! A small seeded random source (SplitMix64, Steele, Lea & Flood, OOPSLA 2014).
//!
//! The data pipeline needs reproducible randomness keyed by (seed, epoch, index) and by
//! names (split assignment, synth layouts), never by thread timing. SplitMix64 is
//! 64 bits of state, passes BigCrush, and its output here is fixed by this file alone,
//! so a manifest or a sample stream stays the same across crate upgrades.

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// The SplitMix64 output function: a bijective 64-bit mix.
#[must_use]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One seed from several keys (e.g. base seed, epoch, sample index), order-sensitive.
#[must_use]
pub fn combine(keys: &[u64]) -> u64 {
    keys.iter()
        .fold(0x6a09_e667_f3bc_c909, |acc, &k| mix64(acc ^ mix64(k.wrapping_add(0x9e37_79b9_7f4a_7c15))))
}

/// A stable 64-bit hash of a string (FNV-1a, then mixed), for name-keyed decisions.
#[must_use]
pub fn hash_str(s: &str) -> u64 {
    let h = s
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    mix64(h)
}

impl Rng {
    /// A generator started from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in [0, 1), 24 bits of resolution.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform integer in [0, n); 0 when `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Multiply-shift (Lemire); the bias is below 2^-32 for the sizes used here.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.next_f32() < p
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(combine(&[7, 3, 11]));
        let mut b = Rng::new(combine(&[7, 3, 11]));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(combine(&[7, 3, 11]), combine(&[7, 11, 3]));
    }

    #[test]
    fn ranges_hold() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let u = r.uniform(-0.3, 0.3);
            assert!((-0.3..0.3).contains(&u));
            assert!(r.below(5) < 5);
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..50).collect();
        Rng::new(9).shuffle(&mut v);
        let mut s = v.clone();
        s.sort_unstable();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_ne!(v, s);
    }
}
