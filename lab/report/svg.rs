//! The inline SVG of a scenario's timeline: one lane per unit with its state as coloured
//! segments, faults as red triangles with a line through the lane, restarts, exits and
//! timeouts as small symbols, the checks on a lane of their own, and a time axis in seconds.
//! Every drawn thing carries a `<title>` (the browser's tooltip) and a class the HTML test
//! looks for. No script: hovering is all the interaction a report needs.

use std::fmt::Write as _;
use std::time::Duration;

use crate::verdict::ScenarioResult;

use super::html::escape;
use super::text;
use super::timeline::{self, Chart, Mark, MarkKind, State};

const WIDTH: f64 = 960.0;
/// Room for unit names left of the plot.
const LABEL_W: f64 = 170.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 6.0;
const LANE_H: f64 = 32.0;
const BAR_H: f64 = 12.0;
const AXIS_H: f64 = 24.0;

pub(super) const FAULT_COLOR: &str = "#c92a2a";
const RESTART_COLOR: &str = "#1971c2";
const TIMEOUT_COLOR: &str = "#e67700";
const LAB_COLOR: &str = "#868e96";

pub(super) fn state_color(s: State) -> &'static str {
    match s {
        State::Active => "#2f9e44",
        State::Activating => "#ffd43b",
        State::Deactivating => "#ffa94d",
        State::Failed => "#fa5252",
        State::AutoRestart => "#9775fa",
        State::Inactive => "#ced4da",
    }
}

/// Maps times onto the plot's x range.
struct Scale {
    end: f64,
}

impl Scale {
    fn x(&self, t: Duration) -> f64 {
        LABEL_W + (t.as_secs_f64() / self.end).min(1.0) * (WIDTH - LABEL_W - RIGHT)
    }
}

pub(super) fn timeline(r: &ScenarioResult) -> String {
    let chart = timeline::chart(r);
    let scale = Scale { end: chart.end.as_secs_f64() };
    let lanes = chart.lanes.len() + usize::from(!r.checks.is_empty());
    let plot_bottom = TOP + LANE_H * lanes as f64;
    let height = plot_bottom + AXIS_H;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" font-size="12">"#
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(&format!("timeline of {} on {}", r.name, r.suite)));
    axis(&mut svg, &scale, &chart, plot_bottom);
    for (i, lane) in chart.lanes.iter().enumerate() {
        let y = TOP + LANE_H * i as f64;
        let bar_y = y + (LANE_H - BAR_H) / 2.0 + 3.0;
        let _ = writeln!(svg, r#"<g class="lane" data-unit="{}">"#, escape(&lane.unit));
        label(&mut svg, &lane.unit, y);
        let _ = writeln!(
            svg,
            r##"<line x1="{LABEL_W}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#dee2e6" stroke-width="1"/>"##,
            WIDTH - RIGHT,
            bar_y + BAR_H / 2.0,
            bar_y + BAR_H / 2.0
        );
        for s in &lane.segments {
            let (x1, x2) = (scale.x(s.from), scale.x(s.to));
            let _ = writeln!(
                svg,
                r#"<rect class="seg {}" x="{x1:.1}" y="{bar_y:.1}" width="{:.1}" height="{BAR_H}" fill="{}"><title>{}</title></rect>"#,
                s.state.name(),
                (x2 - x1).max(1.0),
                state_color(s.state),
                escape(&format!("{} from {} to {}\n{}", s.state.name(), text::precise(s.from), text::precise(s.to), s.cause)),
            );
        }
        for m in &lane.marks {
            mark(&mut svg, m, scale.x(m.at), bar_y, bar_y, bar_y + BAR_H);
        }
        let _ = writeln!(svg, "</g>");
    }
    for m in &chart.target_marks {
        mark(&mut svg, m, scale.x(m.at), TOP + 8.0, TOP, plot_bottom);
    }
    if !r.checks.is_empty() {
        let y = TOP + LANE_H * chart.lanes.len() as f64;
        let mid = y + LANE_H / 2.0 + 3.0;
        let _ = writeln!(svg, r#"<g class="lane checks">"#);
        label(&mut svg, "checks", y);
        for c in &r.checks {
            let x = scale.x(c.at);
            let (class, color, symbol) = if c.passed { ("pass", "#2f9e44", "✓") } else { ("fail", FAULT_COLOR, "✗") };
            let tip = format!(
                "step {} {} at {}: {}\nexpected {}\nobserved {}",
                c.step,
                c.kind,
                text::precise(c.at),
                if c.passed { "passed" } else { "FAILED" },
                c.expected,
                c.observed
            );
            let _ = writeln!(
                svg,
                r#"<g class="check-mark {class}"><title>{}</title><circle cx="{x:.1}" cy="{mid:.1}" r="7" fill="{color}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="white" font-size="11" font-weight="bold">{symbol}</text></g>"#,
                escape(&tip),
                mid + 4.0
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    svg.push_str("</svg>\n");
    svg
}

fn label(svg: &mut String, name: &str, lane_y: f64) {
    // Long instance names are cut so the plot keeps its width; the tooltip has them whole.
    let shown: String = if name.chars().count() > 22 { name.chars().take(21).chain(['…']).collect() } else { name.to_string() };
    let _ = writeln!(
        svg,
        r##"<text class="unit" x="{:.1}" y="{:.1}" text-anchor="end" fill="#212529"><title>{}</title>{}</text>"##,
        LABEL_W - 10.0,
        lane_y + LANE_H / 2.0 + 7.0,
        escape(name),
        escape(&shown)
    );
}

/// One instant: `y` is where the symbol sits, the line (faults only) runs from `top` to `bottom`.
fn mark(svg: &mut String, m: &Mark, x: f64, y: f64, top: f64, bottom: f64) {
    let tip = escape(&format!("{} at {}", m.label, text::precise(m.at)));
    let shape = match m.kind {
        MarkKind::Fault => format!(
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{FAULT_COLOR}" stroke-width="2" stroke-dasharray="3 2"/><path d="M{:.1} {:.1} L{:.1} {:.1} L{x:.1} {:.1} Z" fill="{FAULT_COLOR}" stroke="white" stroke-width="0.5"/>"#,
            top - 9.0,
            bottom + 2.0,
            x - 6.0,
            y - 11.0,
            x + 6.0,
            y - 11.0,
            y - 1.0
        ),
        MarkKind::Restart => format!(
            r#"<circle cx="{x:.1}" cy="{:.1}" r="5" fill="white" stroke="{RESTART_COLOR}" stroke-width="2.5"/>"#,
            y + BAR_H / 2.0
        ),
        MarkKind::Exit => format!(
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#212529" stroke-width="2"/>"##,
            bottom,
            bottom + 6.0
        ),
        MarkKind::Timeout => format!(
            r#"<path d="M{x:.1} {:.1} L{:.1} {:.1} L{x:.1} {:.1} L{:.1} {:.1} Z" fill="{TIMEOUT_COLOR}"/>"#,
            y - 12.0,
            x + 5.0,
            y - 6.5,
            y - 1.0,
            x - 5.0,
            y - 6.5
        ),
        MarkKind::Lab => format!(
            r#"<path d="M{:.1} {:.1} L{:.1} {:.1} L{x:.1} {:.1} Z" fill="none" stroke="{LAB_COLOR}" stroke-width="1.5"/>"#,
            x - 4.5,
            y - 9.0,
            x + 4.5,
            y - 9.0,
            y - 2.0
        ),
    };
    let class = match m.kind {
        MarkKind::Fault => "fault",
        MarkKind::Lab => "lab",
        MarkKind::Restart => "restart",
        MarkKind::Exit => "exit",
        MarkKind::Timeout => "timeout",
    };
    let _ = writeln!(svg, r#"<g class="mark {class}"><title>{tip}</title>{shape}</g>"#);
}

/// A step of 1, 2 or 5 times a power of ten that puts at most ten ticks on the axis.
pub(super) fn tick_step(end: f64) -> f64 {
    let mut magnitude = 0.001;
    loop {
        for m in [1.0, 2.0, 5.0] {
            let step = m * magnitude;
            if end / step <= 10.0 {
                return step;
            }
        }
        magnitude *= 10.0;
    }
}

fn axis(svg: &mut String, scale: &Scale, chart: &Chart, plot_bottom: f64) {
    let step = tick_step(chart.end.as_secs_f64());
    let _ = writeln!(svg, r#"<g class="axis">"#);
    let mut i = 0u32;
    loop {
        let t = step * f64::from(i);
        if t > scale.end + 1e-9 {
            break;
        }
        let x = scale.x(Duration::from_secs_f64(t));
        // Enough decimals to tell ticks apart, no more: 0s 1s 2s, 0.5s 1.0s, 0.02s.
        let decimals = if step >= 1.0 { 0 } else { (-step.log10()).ceil() as usize };
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#e9ecef" stroke-width="1"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#495057" font-size="11">{t:.decimals$}s</text>"##,
            plot_bottom + 4.0,
            plot_bottom + 17.0
        );
        i += 1;
    }
    let _ = writeln!(svg, "</g>");
}

/// The key to the colours and symbols, drawn once per page.
pub(super) fn legend() -> String {
    let mut svg = String::new();
    let mut x = 4.0;
    let _ = write!(
        svg,
        r#"<svg class="legend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 22" width="{WIDTH}" height="22" font-family="system-ui, sans-serif" font-size="12">"#
    );
    for s in State::ALL {
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="5" width="16" height="12" fill="{}"/><text x="{}" y="15" fill="#212529">{}</text>"##,
            state_color(s),
            x + 21.0,
            s.name()
        );
        x += 26.0 + 7.5 * s.name().len() as f64;
    }
    let symbols = [
        (format!(r#"<path d="M{} 4 L{} 4 L{} 16 Z" fill="{FAULT_COLOR}"/>"#, x, x + 12.0, x + 6.0), "fault"),
        (format!(r#"<circle cx="{}" cy="11" r="5" fill="white" stroke="{RESTART_COLOR}" stroke-width="2.5"/>"#, x + 6.0), "restart"),
        (format!(r##"<line x1="{0}" x2="{0}" y1="4" y2="18" stroke="#212529" stroke-width="2"/>"##, x + 6.0), "exit"),
        (format!(r#"<path d="M{0} 4 L{1} 11 L{0} 18 L{2} 11 Z" fill="{TIMEOUT_COLOR}"/>"#, x + 6.0, x + 11.0, x + 1.0), "timeout"),
    ];
    for (i, (shape, name)) in symbols.iter().enumerate() {
        let shift = 80.0 * i as f64;
        let _ = write!(
            svg,
            r##"<g transform="translate({shift} 0)">{shape}<text x="{}" y="15" fill="#212529">{name}</text></g>"##,
            x + 17.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::report::fixtures;

    #[rstest]
    #[case(3.21, 0.5)]
    #[case(8.4, 1.0)]
    #[case(30.05, 5.0)]
    #[case(0.08, 0.01)]
    #[case(1.0, 0.1)]
    fn ticks_are_round_and_at_most_ten(#[case] end: f64, #[case] step: f64) {
        assert!((tick_step(end) - step).abs() < 1e-9, "{end}: {}", tick_step(end));
    }

    #[test]
    fn lanes_marks_checks_and_axis_are_drawn_and_text_is_escaped() {
        let svg = timeline(&fixtures::failing());
        assert_eq!(svg.matches(r#"<g class="lane" data-unit="#).count(), 2);
        assert_eq!(svg.matches(r#"<g class="mark fault">"#).count(), 1);
        assert_eq!(svg.matches(r#"<g class="mark timeout">"#).count(), 3);
        assert_eq!(svg.matches(r#"<g class="check-mark fail">"#).count(), 2);
        assert_eq!(svg.matches(r#"<g class="check-mark pass">"#).count(), 1);
        // 0s .. 8s every second, the axis ends at the scenario's duration (8.4s).
        let ticks: Vec<&str> = svg.match_indices(r#"class="tick""#).map(|(i, _)| &svg[i..]).collect();
        assert_eq!(ticks.len(), 9);
        assert!(ticks[8].contains(">8s</text>"));
        assert!(svg.contains("failed from 3.021s to 5.000s\nweb.service: Failed with result &#39;watchdog&#39;."), "{svg}");
        assert!(!svg.contains("'watchdog'"));
    }

    #[test]
    fn the_plot_spans_the_scenario() {
        let svg = timeline(&fixtures::passing());
        // The last segment (active until the end) reaches the right edge of the plot.
        let last = svg.lines().rfind(|l| l.contains(r#"class="seg"#)).unwrap();
        assert!(last.contains(r#"class="seg active""#), "{last}");
        let x: f64 = last.split(r#" x=""#).nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let w: f64 = last.split(r#"width=""#).nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!((x + w - (WIDTH - RIGHT)).abs() < 0.2, "{last}");
    }
}
