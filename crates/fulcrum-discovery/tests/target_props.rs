//! Target parsing never panics, on any input, and what it accepts it can
//! print back as an equivalent target.

use fulcrum_discovery::Target;
use proptest::prelude::*;

/// Pieces of real targets, so that generated strings reach deep into the
/// parser instead of failing at the first byte.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("dns://".to_string()),
        Just("dns+srv://".to_string()),
        Just("static:".to_string()),
        Just("/".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(".".to_string()),
        Just("_http._tcp.".to_string()),
        Just("127.0.0.1".to_string()),
        Just("::1".to_string()),
        Just("api.internal".to_string()),
        "[0-9]{1,6}".prop_map(|s| s),
        "[a-z_-]{1,8}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = Target::parse(&s);
    }

    #[test]
    fn assembled_targets_never_panic_and_round_trip(parts in prop::collection::vec(fragment(), 0..12)) {
        let s: String = parts.concat();
        match Target::parse(&s) {
            Ok(target) => {
                let printed = target.to_string();
                let again = Target::parse(&printed);
                prop_assert_eq!(again.as_ref(), Ok(&target), "{} printed as {}", s, printed);
            }
            Err(e) => {
                prop_assert!(e.position() <= s.len());
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }
}
