//! One endpoint's standing with its probe: the rise / fall state machine.

/// What the driver keeps of an endpoint's probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Whether its probe says it may take requests.
    healthy: bool,
    /// Results in a row against the current verdict.
    against: u32,
    /// No probe has answered yet.
    unprobed: bool,
}

impl Verdict {
    /// A new endpoint's verdict before its first probe.
    pub(crate) fn new(unhealthy_until_probed: bool) -> Self {
        Verdict {
            healthy: !unhealthy_until_probed,
            against: 0,
            unprobed: true,
        }
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// It starts unhealthy and no probe has answered yet: it is not even a
    /// candidate in panic mode (like an endpoint still being made).
    pub(crate) fn awaits_first_probe(&self) -> bool {
        self.unprobed && !self.healthy
    }

    /// Records a probe's result; returns the new verdict if it changed.
    ///
    /// `fall` failures in a row take a healthy endpoint down, `rise`
    /// passes in a row bring it back; a result agreeing with the verdict
    /// clears the count against it. An endpoint waiting for its first
    /// probe comes in at the first pass: its rise is the probe itself.
    pub(crate) fn record(&mut self, passed: bool, rise: u32, fall: u32) -> Option<bool> {
        let first = std::mem::replace(&mut self.unprobed, false);
        if passed == self.healthy {
            self.against = 0;
            return None;
        }
        self.against += 1;
        let needed = match (passed, first) {
            (true, true) => 1,
            (true, false) => rise,
            (false, _) => fall,
        };
        if self.against < needed {
            return None;
        }
        self.healthy = passed;
        self.against = 0;
        Some(passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_failures_in_a_row_take_it_down_and_rise_passes_bring_it_back() {
        let mut v = Verdict::new(false);
        assert_eq!(v.record(false, 2, 3), None);
        assert_eq!(v.record(false, 2, 3), None);
        // A pass between failures starts the count again.
        assert_eq!(v.record(true, 2, 3), None);
        assert_eq!(v.record(false, 2, 3), None);
        assert_eq!(v.record(false, 2, 3), None);
        assert_eq!(v.record(false, 2, 3), Some(false));
        assert!(!v.is_healthy());
        assert_eq!(v.record(true, 2, 3), None);
        assert_eq!(v.record(false, 2, 3), None);
        assert_eq!(v.record(true, 2, 3), None);
        assert_eq!(v.record(true, 2, 3), Some(true));
        assert!(v.is_healthy());
    }

    #[test]
    fn an_endpoint_waiting_for_its_first_probe_comes_in_at_the_first_pass() {
        let mut v = Verdict::new(true);
        assert!(!v.is_healthy());
        assert_eq!(v.record(true, 2, 3), Some(true));
        // A first probe that fails keeps it out until it rises.
        let mut v = Verdict::new(true);
        assert_eq!(v.record(false, 2, 3), None);
        assert_eq!(v.record(true, 2, 3), None);
        assert_eq!(v.record(true, 2, 3), Some(true));
    }

    #[test]
    fn fall_and_rise_of_one_act_at_once() {
        let mut v = Verdict::new(false);
        assert_eq!(v.record(false, 1, 1), Some(false));
        assert_eq!(v.record(true, 1, 1), Some(true));
    }
}
