//! Composite targets: `first(T, …)` and `weighted(N=T, …)`.

use super::{Target, TargetError, TargetErrorKind};

/// How a composite target combines its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    First,
    Weighted,
}

/// The composite at the start of `input`, if it starts with `name(`:
/// `None` when it does not look like one.
pub(super) fn parse_composite(input: &str) -> Option<Result<Target, TargetError>> {
    let open = input.find('(')?;
    let name = &input[..open];
    let is_name = !name.is_empty()
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !is_name {
        return None;
    }
    let err = |at, kind| Some(Err(TargetError::new(input, at, kind)));
    let kind = if name.eq_ignore_ascii_case("first") {
        Kind::First
    } else if name.eq_ignore_ascii_case("weighted") {
        Kind::Weighted
    } else {
        return err(0, TargetErrorKind::UnknownComposite(name.to_owned()));
    };
    let Some(inner) = input[open + 1..].strip_suffix(')') else {
        return err(input.len(), TargetErrorKind::Unbalanced);
    };
    let parts = match split_top_level(inner) {
        Ok(parts) => parts,
        Err(at) => return err(open + 1 + at, TargetErrorKind::Unbalanced),
    };
    if inner.trim().is_empty() {
        return err(open + 1, TargetErrorKind::EmptyComposite);
    }
    let mut first = Vec::new();
    let mut weighted = Vec::new();
    for (start, raw) in parts {
        let at = open + 1 + start + (raw.len() - raw.trim_start().len());
        let part = raw.trim();
        if part.is_empty() {
            return err(at, TargetErrorKind::EmptyEntry);
        }
        let (share, sub, sub_at) = match kind {
            Kind::First => (0, part, at),
            Kind::Weighted => {
                let share = part
                    .split_once('=')
                    .map(|(n, _)| n.trim())
                    .and_then(|n| {
                        n.bytes()
                            .all(|b| b.is_ascii_digit())
                            .then(|| n.parse::<u32>())
                    })
                    .and_then(Result::ok)
                    .filter(|&n| n > 0);
                let Some(share) = share else {
                    return err(at, TargetErrorKind::InvalidShare(part.to_owned()));
                };
                let skip = part.find('=').unwrap_or(0) + 1;
                (share, part[skip..].trim_start(), at + skip)
            }
        };
        // A static list of several entries goes in parentheses, as its
        // commas would otherwise separate parts.
        let (sub, sub_at) = match sub.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            Some(list) => (list, sub_at + 1),
            None => (sub, sub_at),
        };
        let target = match Target::parse(sub) {
            Ok(Target::First(_) | Target::Weighted(_)) => {
                return err(sub_at, TargetErrorKind::NestedComposite)
            }
            Ok(target) => target,
            Err(e) => {
                let lead = sub.len() - sub.trim_start().len();
                return Some(Err(TargetError::new(
                    input,
                    sub_at + lead + e.position(),
                    e.kind().clone(),
                )));
            }
        };
        match kind {
            Kind::First => first.push(target),
            Kind::Weighted => weighted.push((share, target)),
        }
    }
    Some(Ok(match kind {
        Kind::First => Target::First(first),
        Kind::Weighted => Target::Weighted(weighted),
    }))
}

/// `s` split at the commas outside parentheses, each part with its byte
/// offset; `Err(at)` for a `)` that closes nothing or a `(` never closed.
fn split_top_level(s: &str) -> Result<Vec<(usize, &str)>, usize> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut opened) = (0usize, 0, 0);
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' => {
                if depth == 0 {
                    opened = i;
                }
                depth += 1;
            }
            b')' => depth = depth.checked_sub(1).ok_or(i)?,
            b',' if depth == 0 => {
                parts.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(opened);
    }
    parts.push((start, &s[start..]));
    Ok(parts)
}

/// A part as a composite writes it: a static list of several entries in
/// parentheses.
pub(super) fn part(target: &Target) -> String {
    match target {
        Target::Static(set) if set.len() > 1 => format!("({target})"),
        _ => target.to_string(),
    }
}
