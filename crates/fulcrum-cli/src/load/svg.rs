//! The latency CDF of several runs as one SVG: a tail plot, x the latency
//! (log scale), y the percentile on a "nines" scale (p50, p90, p99,
//! p99.9 evenly spaced), so tails are as visible as medians.

use std::fmt::Write;

use hdrhistogram::Histogram;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 210.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// p99.9 at the top: three nines.
const NINES: f64 = 3.0;

const COLOURS: [&str; 12] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#000000", "#aa3377",
];

/// The SVG document for `runs` (a label and its latency histogram in
/// microseconds each), titled `title`.
pub(crate) fn plot_cdf(title: &str, runs: &[(String, &Histogram<u64>)]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let lowest = runs
        .iter()
        .map(|(_, h)| h.min().max(1))
        .min()
        .unwrap_or(100) as f64;
    let highest = runs
        .iter()
        .map(|(_, h)| h.max().max(2))
        .max()
        .unwrap_or(1000) as f64;
    // Whole decades of milliseconds around the data.
    let lo = (lowest / 1000.0).log10().floor();
    let hi = (highest / 1000.0).log10().ceil().max(lo + 1.0);
    let x = |us: f64| LEFT + plot_w * (((us / 1000.0).max(1e-6)).log10() - lo) / (hi - lo);
    let y = |nines: f64| TOP + plot_h * (1.0 - nines / NINES);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    // Grid: decades of latency, and the percentiles.
    let mut decade = lo;
    while decade <= hi + 1e-9 {
        let px = x(10f64.powf(decade) * 1000.0);
        let label = format_ms(10f64.powf(decade));
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
        decade += 1.0;
    }
    for (nines, label) in [
        (0.0, "p0"),
        (std::f64::consts::LOG10_2, "p50"),
        (1.0, "p90"),
        (2.0, "p99"),
        (3.0, "p99.9"),
    ] {
        let py = y(nines);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            LEFT + plot_w,
            LEFT - 8.0,
            py + 4.0
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency (ms, log scale)</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0
    );
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
    );
    for (i, (label, h)) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = String::new();
        for step in 0..=300 {
            let nines = NINES * f64::from(step) / 300.0;
            let q = 1.0 - 10f64.powf(-nines);
            let us = h.value_at_quantile(q.min(1.0)).max(1) as f64;
            let _ = write!(points, "{:.1},{:.1} ", x(us), y(nines));
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"#,
            points.trim_end()
        );
        let ly = TOP + 14.0 + 18.0 * i as f64;
        let lx = LEFT + plot_w + 16.0;
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_well_formed_svg_with_one_line_per_run() {
        let mut fast = Histogram::<u64>::new(3).unwrap();
        let mut slow = Histogram::<u64>::new(3).unwrap();
        for i in 1..=1000 {
            fast.record(1000 + i).unwrap();
            slow.record(1000 + 40 * i).unwrap();
        }
        let svg = plot_cdf(
            "a <test>",
            &[("fast".into(), &fast), ("slow".into(), &slow)],
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt;test&gt;"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
