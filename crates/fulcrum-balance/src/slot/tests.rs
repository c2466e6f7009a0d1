//! The slot's state machine and streaks.

use super::*;

fn slot() -> Slot {
    let owner: Weak<dyn Any + Send + Sync> = Weak::<()>::new();
    Slot::new(
        Endpoint::new(([127, 0, 0, 1], 1).into()),
        &EwmaConfig::default(),
        owner,
        Arc::new(Control::new(
            CancelledAs::default(),
            std::time::Duration::from_secs(3),
        )),
        None,
    )
}

#[test]
fn an_old_service_cannot_take_a_new_one_out_of_service() {
    let s = slot();
    s.install();
    assert_eq!((s.state(), s.generation()), (EndpointState::Active, 1));
    assert!(s.mark_not_ready(1));
    assert!(!s.mark_not_ready(1), "already out of service");
    s.install();
    assert_eq!(s.generation(), 2);
    // a request still holding generation 1 fails late
    assert!(!s.mark_not_ready(1));
    assert_eq!(s.state(), EndpointState::Active);
    assert_eq!(s.not_ready_streak(), 1, "streak counts take-downs only");
}

#[test]
fn a_success_ends_both_streaks() {
    let s = slot();
    s.install();
    assert_eq!((s.count_failure(), s.count_failure()), (1, 2));
    assert!(s.mark_not_ready(1));
    assert_eq!((s.failures_in_a_row(), s.not_ready_streak()), (2, 1));
    s.forget_failures();
    assert_eq!((s.failures_in_a_row(), s.not_ready_streak()), (0, 1));
    s.count_failure();
    s.mark_ready();
    assert_eq!((s.failures_in_a_row(), s.not_ready_streak()), (0, 0));
}

#[test]
fn only_an_active_endpoint_is_ejected_and_only_an_ejected_one_readmitted() {
    let s = slot();
    assert!(!s.eject(), "warming");
    s.install();
    assert!(!s.readmit());
    assert!(s.eject());
    assert_eq!((s.state(), s.generation()), (EndpointState::Ejected, 1));
    assert!(!s.serves(1) && !s.is_active());
    assert!(s.readmit());
    assert!(s.serves(1));
    // An ejected endpoint whose service fails is made afresh too.
    assert!(s.eject());
    assert!(s.take_out_of_service(1));
    assert_eq!(s.state(), EndpointState::Unavailable);
}

#[test]
fn an_unhealthy_endpoint_is_held_out_until_readmitted() {
    let s = slot();
    s.hold_out(EndpointState::Unhealthy);
    assert_eq!(s.state(), EndpointState::Warming, "only an active one");
    s.install();
    s.hold_out(EndpointState::Unhealthy);
    assert!(!s.serves(1) && !s.is_active());
    assert!(!s.eject(), "outlier detection ejects only active endpoints");
    s.hold_out(EndpointState::Ejected);
    assert_eq!(s.state(), EndpointState::Ejected);
    assert!(s.readmit());
    assert!(s.serves(1));
    s.hold_out(EndpointState::Unhealthy);
    assert!(s.take_out_of_service(1));
    assert_eq!(s.state(), EndpointState::Unavailable);
}

#[test]
fn the_hot_fields_share_the_first_cache_line() {
    // Behind the Arc's 16 bytes of counts.
    let s = slot();
    let base = &s as *const Slot as usize;
    let hot_end = std::ptr::addr_of!(s.ewma) as usize + 24 - base;
    assert!(16 + hot_end <= 64, "hot fields end at {}", 16 + hot_end);
}

#[test]
fn set_state_keeps_the_generation() {
    let s = slot();
    s.install();
    s.install();
    s.set_state(EndpointState::Draining);
    assert_eq!((s.state(), s.generation()), (EndpointState::Draining, 2));
}
