//! Deterministic subsetting for clients with a dense coordinate: every
//! client computes the same assignment of endpoints to clients, in which
//! each endpoint has the same number of clients, by rendezvous hashing with
//! bounded loads; then weights that make equal demand from every client
//! load every endpoint equally.

use crate::key::mix64;

/// A client holds at most this many times its fair share of endpoints.
/// Tighter is more even before weighting but moves more connections when
/// the set changes: removing 1 % of 1000 endpoints (1000 clients, subsets
/// of 20) moved 1.8 % of each client's subset at 1.05 and 1.5 % at 1.1 in
/// simulation (the 1 % removed included).
const SLACK: (usize, usize) = (11, 10);

/// Weight balancing: rounds of matrix scaling (Sinkhorn); the spread left
/// shrinks about tenfold with each.
const SCALING_ROUNDS: usize = 6;

const ORDER_SEED: u64 = 0x005E_ED0F_D1CE_5EED;
const CLIENT_SEED: u64 = 0x00C1_1E27_5EED_0001;

/// How many clients each endpoint gets: `clients × size / n`, rounded, at
/// least 1 and at most every client.
pub(crate) fn clients_per_endpoint(clients: u64, n: usize, size: usize) -> usize {
    let per = (clients as f64 * size as f64 / n.max(1) as f64).round() as u64;
    per.clamp(1, clients) as usize
}

/// Every client's subset for `clients` clients (coordinates
/// `0..clients`) and the endpoints with `hashes`: positions in `hashes`,
/// each with the share of the client's demand it should get (the shares
/// of a client add up to 1).
///
/// Endpoints take turns, in an order drawn from their hashes; each takes
/// the [`clients_per_endpoint`] clients that score highest for it by
/// rendezvous hashing among those not yet full (`⌈n × per / clients ×
/// 1.1⌉` endpoints). So every endpoint has exactly as many clients as any
/// other, a client's subset holds `size` endpoints on average (at most
/// 10 % more), and a change of the set moves few connections: an
/// endpoint's clients are its own choice unless they are full.
///
/// Subsets differ in size, so equal shares would load the endpoints of
/// small subsets more: the shares are scaled (Sinkhorn) until every
/// endpoint gets the same load. Costs `O(clients × endpoints)`.
pub(crate) fn assign(clients: u64, hashes: &[u64], size: usize) -> Vec<Vec<(usize, f64)>> {
    let n = hashes.len();
    let c = clients as usize;
    let per = clients_per_endpoint(clients, n, size);
    // ⌈n × per / clients × 1.1⌉, in integers (a float rounds 22 up to 23).
    let cap = (n * per * SLACK.0).div_ceil(c * SLACK.1).max(1);
    let seeds: Vec<u64> = (0..clients).map(|i| mix64(i ^ CLIENT_SEED)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&k| (mix64(ORDER_SEED ^ hashes[k]), hashes[k]));
    let mut load = vec![0usize; c];
    let mut subsets: Vec<Vec<(usize, f64)>> = vec![Vec::new(); c];
    let mut open: Vec<(u64, u32)> = Vec::with_capacity(c);
    for k in order {
        let h = hashes[k];
        open.clear();
        open.extend(
            seeds
                .iter()
                .enumerate()
                .filter(|&(i, _)| load[i] < cap)
                .map(|(i, &s)| (mix64(s ^ h), i as u32)),
        );
        let take = per.min(open.len());
        if take < open.len() {
            // Highest first; only the top `take` need to be found.
            open.select_nth_unstable_by(take, |a, b| b.cmp(a));
        }
        for &(_, i) in &open[..take] {
            load[i as usize] += 1;
            subsets[i as usize].push((k, 0.0));
        }
    }
    // No client is left without an endpoint: an empty one takes, from the
    // client with the most, the endpoint that scores highest for it (or,
    // if none has two, its own best endpoint as one more connection).
    for i in 0..c {
        if !subsets[i].is_empty() || n == 0 {
            continue;
        }
        let score = |k: usize| (mix64(seeds[i] ^ hashes[k]), hashes[k]);
        let richest = (0..c).max_by_key(|&j| (subsets[j].len(), std::cmp::Reverse(j)));
        match richest.filter(|&j| subsets[j].len() >= 2) {
            Some(j) => {
                let at = (0..subsets[j].len())
                    .max_by_key(|&at| score(subsets[j][at].0))
                    .expect("at least two");
                let moved = subsets[j].swap_remove(at);
                subsets[i].push(moved);
            }
            None => {
                let best = (0..n).max_by_key(|&k| score(k)).expect("n > 0");
                subsets[i].push((best, 0.0));
            }
        }
    }
    for s in &mut subsets {
        s.sort_unstable_by_key(|m| m.0);
        let share = 1.0 / s.len().max(1) as f64;
        s.iter_mut().for_each(|m| m.1 = share);
    }
    let target = (clients as f64 / n as f64).max(f64::MIN_POSITIVE);
    let mut total = vec![0.0f64; n];
    for _ in 0..SCALING_ROUNDS {
        total.iter_mut().for_each(|l| *l = 0.0);
        for s in &subsets {
            s.iter().for_each(|&(k, w)| total[k] += w);
        }
        for s in &mut subsets {
            s.iter_mut()
                .filter(|m| total[m.0] > 0.0)
                .for_each(|m| m.1 *= target / total[m.0]);
            let sum: f64 = s.iter().map(|m| m.1).sum();
            if sum > 0.0 {
                s.iter_mut().for_each(|m| m.1 /= sum);
            }
        }
    }
    subsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(n: u64) -> Vec<u64> {
        (0..n).map(|i| mix64(i + 1)).collect()
    }

    #[test]
    fn every_endpoint_has_as_many_clients_and_load() {
        let all = hashes(200);
        let subsets = assign(100, &all, 10);
        assert_eq!(subsets.len(), 100);
        let (mut clients, mut load) = (vec![0; 200], vec![0.0; 200]);
        for s in &subsets {
            assert!(s.len() <= 11, "at most 10 % over: {}", s.len());
            let total: f64 = s.iter().map(|m| m.1).sum();
            assert!((total - 1.0).abs() < 1e-9);
            for &(k, w) in s {
                clients[k] += 1;
                load[k] += w;
            }
        }
        assert!(clients.iter().all(|&c| c == 5), "{clients:?}");
        let mean = 100.0 / 200.0;
        let max = load.iter().cloned().fold(0.0, f64::max);
        let min = load.iter().cloned().fold(f64::MAX, f64::min);
        assert!(max / mean < 1.01 && min / mean > 0.99, "{min} {max}");
    }

    #[test]
    fn no_client_is_left_without_an_endpoint() {
        for (clients, n, size) in [(4, 8, 2), (10, 3, 1), (50, 7, 1), (3, 40, 2)] {
            for seed in 0..20 {
                let all: Vec<u64> = (0..n).map(|i| mix64(i + 1000 * seed)).collect();
                let subsets = assign(clients, &all, size);
                assert!(
                    subsets.iter().all(|s| !s.is_empty()),
                    "{clients} clients, {n} endpoints, seed {seed}: {subsets:?}"
                );
            }
        }
    }

    #[test]
    fn few_clients_still_reach_every_endpoint() {
        // 10 clients, 1000 endpoints, subsets of 20: an endpoint needs a
        // client, so each client takes about 100.
        let subsets = assign(10, &hashes(1000), 20);
        let mut reached = vec![false; 1000];
        for s in &subsets {
            assert!((90..=110).contains(&s.len()), "{}", s.len());
            s.iter().for_each(|m| reached[m.0] = true);
        }
        assert!(reached.iter().all(|&r| r));
    }

    #[test]
    fn the_assignment_is_pinned() {
        // The same on every platform and in every version: the clients'
        // agreement rests on it.
        let subsets = assign(4, &hashes(6), 3);
        let members: Vec<Vec<usize>> = subsets
            .iter()
            .map(|s| s.iter().map(|m| m.0).collect())
            .collect();
        assert_eq!(
            members,
            vec![vec![0, 2], vec![1, 3, 4, 5], vec![1, 2, 3, 4], vec![0, 5]]
        );
    }
}
