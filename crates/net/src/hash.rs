//! splitmix64, the one small mixing function botscope's sensors and the lab share: the survey's
//! probe order and the lab's seeded choices step it ([`splitmix`]); the sketches hash addresses
//! with its finaliser ([`finalize`]).

/// Advances `state` and returns the next well-mixed 64-bit value (Steele, Lea and Flood's
/// splitmix64): deterministic per seed, which is what reproducible runs need; not for secrets.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    finalize(*state)
}

/// splitmix64's output function: spreads every input bit over the whole word.
#[inline]
pub fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_gives_the_published_sequence_for_seed_zero() {
        // The first outputs of splitmix64 seeded with 0, as every implementation gives them.
        let mut state = 0;
        assert_eq!(splitmix(&mut state), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix(&mut state), 0x6e78_9e6a_a1b9_65f4);
    }
}
