use super::{Loads, PickContext, Picker, Policy};

/// Uniformly random; ignores weights and load. A baseline, and the right
/// choice only when endpoints are identical and load is tiny.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

impl Picker for Random {
    #[inline]
    fn pick(&self, cx: &mut PickContext<'_>) -> Option<usize> {
        let n = cx.loads().len();
        (n > 0).then(|| cx.random_below(n))
    }
}

impl Policy for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn uses_latency(&self) -> bool {
        false
    }

    fn build(&self, _loads: &Loads<'_>, _previous: Option<&dyn Picker>) -> Box<dyn Picker> {
        Box::new(Random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::TestEndpoints;

    #[test]
    fn uniform() {
        let f = TestEndpoints::weighted(&[1, 5, 1, 1]);
        let counts = f.counts(&Random, 40_000, 9);
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }
}
