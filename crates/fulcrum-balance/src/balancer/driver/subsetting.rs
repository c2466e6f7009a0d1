//! Subsetting in the update stream: each discovered set is cut to this
//! client's subset before the driver sees it, on the blocking pool
//! (deterministic subsetting hashes every client against every endpoint).

use fulcrum_core::BoxError;
use futures_util::StreamExt;

use crate::subsetting::Subsetting;
use crate::updates::BoxUpdates;

/// `updates`, each set replaced by this client's subset of it. Repeated
/// addresses are warned of here, as the subset has none.
pub(super) fn subsetted(updates: BoxUpdates, subsetting: Subsetting) -> BoxUpdates {
    updates
        .then(move |item| {
            let subsetting = subsetting.clone();
            async move {
                let set = item?;
                if set.duplicates() > 0 {
                    tracing::warn!(
                        duplicates = set.duplicates(),
                        "endpoint set repeats addresses; the first occurrence of each is used"
                    );
                }
                let of = set.len();
                let mine = tokio::task::spawn_blocking(move || subsetting.select(&set))
                    .await
                    .map_err(|e| {
                        BoxError::from(format!("subsetting failed ({e}); keeping the last set"))
                    })?;
                tracing::debug!(kept = mine.len(), of, "subsetting: this client's endpoints");
                Ok(mine)
            }
        })
        .boxed()
}
