//! Rendezvous subsetting: the `size` endpoints that score highest for a
//! client.

use crate::key::mix64;

/// Positions of the `size` endpoints (given by their
/// [`endpoint_hash`](crate::key::endpoint_hash)es) that score highest for
/// the client whose id hashes to `client`. Ties, vanishingly rare, are
/// broken by the endpoint's hash, so every client agrees.
pub(crate) fn choose(client: u64, hashes: &[u64], size: usize) -> Vec<usize> {
    let mut scored: Vec<(u64, u64, usize)> = hashes
        .iter()
        .enumerate()
        .map(|(k, &h)| (mix64(client ^ h), h, k))
        .collect();
    let size = size.min(scored.len());
    if size < scored.len() {
        // Highest first; only the top `size` need to be found.
        scored.select_nth_unstable_by(size, |a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    }
    scored.truncate(size);
    scored.into_iter().map(|(_, _, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_keeps_its_endpoints_when_others_come_and_go() {
        let all: Vec<u64> = (0..30u64).map(|i| mix64(i + 1)).collect();
        let mut before: Vec<u64> = choose(7, &all, 5).into_iter().map(|k| all[k]).collect();
        // Remove one endpoint the client does not use: its subset stays.
        let unused = all.iter().position(|h| !before.contains(h)).unwrap();
        let fewer: Vec<u64> = all
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != unused)
            .map(|(_, &h)| h)
            .collect();
        let mut after: Vec<u64> = choose(7, &fewer, 5).into_iter().map(|k| fewer[k]).collect();
        before.sort_unstable();
        after.sort_unstable();
        assert_eq!(before, after);
        // Remove one it uses: only that one is replaced.
        let used = before[0];
        let without: Vec<u64> = all.iter().copied().filter(|&h| h != used).collect();
        let now: Vec<u64> = choose(7, &without, 5)
            .into_iter()
            .map(|k| without[k])
            .collect();
        assert_eq!(now.iter().filter(|h| before.contains(h)).count(), 4);
    }
}
