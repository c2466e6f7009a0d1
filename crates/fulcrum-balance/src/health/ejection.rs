//! One endpoint's record with outlier detection, as the driver keeps it:
//! what it answered, how often it was ejected, until when.

use std::time::Duration;

use tokio::time::Instant;

use super::outlier::{Answers, EjectionReason, OutlierDetection};

/// The driver's record of one endpoint for outlier detection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ejection {
    /// Ejections counted against it: the next one lasts `base × 2^n`.
    /// Goes down by one for each interval it spends in service.
    multiplier: u32,
    /// Ejected until then, for that reason.
    until: Option<(Instant, EjectionReason)>,
    /// Its cumulative answers when the current interval began.
    seen: Answers,
}

impl Ejection {
    /// Until when it is ejected.
    pub(crate) fn until(&self) -> Option<Instant> {
        self.until.map(|(at, _)| at)
    }

    pub(crate) fn is_ejected(&self) -> bool {
        self.until.is_some()
    }

    /// Its answers in the interval that ends now, from the cumulative
    /// counts; the next interval starts from these.
    pub(crate) fn interval_answers(&mut self, cumulative: Answers) -> Answers {
        let answers = Answers {
            total: cumulative.total.saturating_sub(self.seen.total),
            failed: cumulative
                .failed
                .saturating_sub(self.seen.failed)
                .min(cumulative.total.saturating_sub(self.seen.total)),
        };
        self.seen = cumulative;
        answers
    }

    /// Ejects it at `now`: returns until when and for how long. The length
    /// is drawn from the upper half of `base × 2^(n−1)` (capped), so that
    /// endpoints ejected together do not return together.
    pub(crate) fn eject(
        &mut self,
        od: &OutlierDetection,
        reason: EjectionReason,
        now: Instant,
        rng: &mut fastrand::Rng,
    ) -> (Instant, Duration) {
        self.multiplier = self.multiplier.saturating_add(1);
        let full = od.ejection_time(self.multiplier);
        let length = full / 2 + (full / 2).mul_f64(rng.f64());
        // Lengths are at most a year (the setters clamp them).
        let until = now
            .checked_add(length)
            .unwrap_or_else(|| now + Duration::from_secs(86_400));
        self.until = Some((until, reason));
        (until, length)
    }

    /// Its ejection is over.
    pub(crate) fn readmit(&mut self) {
        self.until = None;
    }

    /// An interval passed; if it spent it in service, one ejection is
    /// forgiven.
    pub(crate) fn interval_passed(&mut self) {
        if self.until.is_none() {
            self.multiplier = self.multiplier.saturating_sub(1);
        }
    }
}

/// Which of `candidates` to eject, given `ejected` already out of a set of
/// `members`: as many as the maximum ejection percentage leaves room for,
/// in the order given.
pub(crate) fn admit<T: Copy>(
    od: &OutlierDetection,
    candidates: &[T],
    ejected: usize,
    members: usize,
) -> Vec<T> {
    let room = od.max_ejected(members).saturating_sub(ejected);
    candidates.iter().copied().take(room).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejections_lengthen_and_are_forgiven_in_service() {
        let od = OutlierDetection::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let now = Instant::now();
        let mut e = Ejection::default();
        let (_, first) = e.eject(&od, EjectionReason::SuccessRate, now, &mut rng);
        assert!(first >= Duration::from_secs(15) && first <= Duration::from_secs(30));
        e.readmit();
        let (_, second) = e.eject(&od, EjectionReason::SuccessRate, now, &mut rng);
        assert!(second >= Duration::from_secs(30) && second <= Duration::from_secs(60));
        // Ejected: an interval forgives nothing.
        e.interval_passed();
        e.readmit();
        // In service for two intervals: back to the first length.
        e.interval_passed();
        e.interval_passed();
        let (_, again) = e.eject(&od, EjectionReason::SuccessRate, now, &mut rng);
        assert!(again <= Duration::from_secs(30), "{again:?}");
    }

    #[test]
    fn interval_answers_are_differences_of_cumulative_counts() {
        let mut e = Ejection::default();
        let a = |total, failed| Answers { total, failed };
        assert_eq!(e.interval_answers(a(100, 10)), a(100, 10));
        assert_eq!(e.interval_answers(a(250, 10)), a(150, 0));
        // More failures than answers (cancelled requests counted twice by
        // a classifier): never above the total.
        assert_eq!(e.interval_answers(a(260, 40)), a(10, 10));
    }

    #[test]
    fn the_maximum_ejection_percentage_limits_who_is_ejected() {
        let od = OutlierDetection::default();
        assert_eq!(admit(&od, &[1, 2, 3], 0, 5), vec![1]);
        assert_eq!(admit(&od, &[1, 2, 3], 1, 5), Vec::<i32>::new());
        assert_eq!(admit(&od, &[1, 2, 3], 1, 30), vec![1, 2]);
        let all = od.max_ejection_percent(100);
        assert_eq!(admit(&all, &[1, 2, 3, 4], 0, 5), vec![1, 2, 3, 4]);
    }
}
