//! Slow start for pickers that do not follow a key: pick again when the
//! pick lands on a ramping endpoint that does not take this request.

use super::{PickContext, Picker};

/// Picks again at most this many times; then the last pick stands.
const REPICKS: u32 = 4;

/// A pick by `picker`, picked again while it lands on an endpoint in slow
/// start that does not take the request (with the probability of its
/// share). Exactly `picker.pick` when nothing ramps.
#[inline]
pub(crate) fn pick_ramped(picker: &dyn Picker, cx: &mut PickContext<'_>) -> Option<usize> {
    let mut pick = picker.pick(cx);
    if cx.loads().ramping() {
        for _ in 0..REPICKS {
            match pick {
                Some(i) if i < cx.loads().len() => {
                    let draw = cx.random_u64();
                    if cx.loads().admits(i, draw) {
                        break;
                    }
                    pick = picker.pick(cx);
                }
                _ => break,
            }
        }
    }
    pick
}
