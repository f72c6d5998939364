//! Hit ratio against capacity, drawn as SVG.
//!
//! One chart per workload, stacked vertically in one SVG; one line per
//! algorithm, the online policies in colour and the offline bounds dashed in
//! black (`opt`) and grey (`belady`), with the legend in a column of its own
//! so it never hides a line. The capacity axis is logarithmic when
//! the capacities span more than a factor of 20. The SVG is returned as a
//! string; writing it is the caller's business.

use plotters::prelude::*;

use crate::Error;
use crate::algorithm::Algorithm;
use crate::engine::{Report, WorkloadReport};
use crate::report::capacity_label;
use crate::trace::SizeMode;

const CHART_WIDTH: u32 = 960;
const CHART_HEIGHT: u32 = 520;

/// Tableau 10, a palette that stays distinguishable for most readers.
const COLOURS: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// Draws every workload of `report` and returns the SVG document.
pub fn render_svg(report: &Report) -> Result<String, Error> {
    let mut svg = String::new();
    let charts = report.workloads.len().max(1) as u32;
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT * charts)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((report.workloads.len().max(1), 1));
        for (area, workload) in areas.iter().zip(&report.workloads) {
            chart(area, workload, report.mode)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn plot_error(err: impl std::fmt::Display) -> Error {
    Error::Plot(err.to_string())
}

/// Width of the legend column right of each chart.
const LEGEND_WIDTH: u32 = 150;

/// How one algorithm's line is drawn.
struct LineStyle {
    colour: RGBColor,
    dashed: bool,
}

fn line_styles(algorithms: &[Algorithm]) -> Vec<LineStyle> {
    let mut online = 0;
    algorithms
        .iter()
        .map(|algorithm| match algorithm {
            Algorithm::Opt => LineStyle {
                colour: BLACK,
                dashed: true,
            },
            Algorithm::Belady => LineStyle {
                colour: RGBColor(0x88, 0x88, 0x88),
                dashed: true,
            },
            Algorithm::Policy(_) => {
                online += 1;
                LineStyle {
                    colour: COLOURS[(online - 1) % COLOURS.len()],
                    dashed: false,
                }
            }
        })
        .collect()
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    workload: &WorkloadReport,
    mode: SizeMode,
) -> Result<(), Error> {
    let (Some(&smallest), Some(&largest)) = (workload.capacities.first(), workload.capacities.last()) else {
        return Ok(());
    };
    let title = format!("{} ({} requests)", workload.name, workload.requests);
    let area = area.titled(&title, ("sans-serif", 22)).map_err(plot_error)?;
    let (plot_area, legend_area) = area.split_horizontally(CHART_WIDTH - LEGEND_WIDTH);
    let styles = line_styles(&workload.algorithms);
    legend(&legend_area, workload, &styles)?;

    let percents: Vec<f64> = workload.results.iter().map(|m| m.hit_ratio * 100.0).collect();
    let low = percents.iter().copied().fold(f64::INFINITY, f64::min);
    let high = percents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y_range = ((low - 5.0).max(0.0) / 5.0).floor() * 5.0..((high + 5.0).min(100.0) / 5.0).ceil() * 5.0;
    let unit = match mode {
        SizeMode::Count => "entries",
        SizeMode::Bytes => "bytes",
    };
    let mut builder = ChartBuilder::on(&plot_area);
    builder.margin(16).x_label_area_size(44).y_label_area_size(56);
    let y_label = |y: &f64| format!("{y:.0}");
    // Bytes are drawn in the binary unit of the smallest capacity, so that
    // a linear axis gets round ticks (200MiB, not 209715200).
    let (divisor, unit_name) = display_unit(smallest, mode);
    let (x_low, x_high) = (smallest as f64 / divisor, largest as f64 / divisor);
    if largest >= smallest.saturating_mul(20) {
        // Ticks at the capacities run (at most about a dozen of them).
        let step = workload.capacities.len().div_ceil(12);
        let ticks: Vec<f64> = workload
            .capacities
            .iter()
            .step_by(step)
            .map(|&c| c as f64 / divisor)
            .collect();
        let x_label = |x: &f64| axis_label((x * divisor).round() as u64, mode);
        let mut chart = builder
            .build_cartesian_2d((x_low * 0.9..x_high * 1.1).log_scale().with_key_points(ticks), y_range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(format!("capacity ({unit}, log scale)"))
            .y_desc("hit ratio (%)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .max_light_lines(0)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .draw()
            .map_err(plot_error)?;
        lines(&mut chart, workload, &styles, divisor)
    } else {
        let pad = ((x_high - x_low) * 0.05).max(1.0 / divisor);
        let x_label = |x: &f64| {
            let number = format!("{x:.1}");
            format!("{}{unit_name}", number.strip_suffix(".0").unwrap_or(&number))
        };
        let mut chart = builder
            .build_cartesian_2d((x_low - pad)..(x_high + pad), y_range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(format!("capacity ({unit})"))
            .y_desc("hit ratio (%)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .max_light_lines(0)
            .x_labels(8)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .draw()
            .map_err(plot_error)?;
        lines(&mut chart, workload, &styles, divisor)
    }
}

/// The divisor and suffix capacities are drawn with: 1 for entries; for
/// bytes, the largest binary unit not above `smallest`.
fn display_unit(smallest: u64, mode: SizeMode) -> (f64, &'static str) {
    if mode == SizeMode::Bytes {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if smallest >= 1 << shift {
                return ((1u64 << shift) as f64, unit);
            }
        }
    }
    (1.0, "")
}

/// A capacity on the axis: entries as is; bytes exactly in a binary unit
/// when one divides them (`128MiB`), else to one decimal (`96.9MiB`).
fn axis_label(capacity: u64, mode: SizeMode) -> String {
    let exact = capacity_label(capacity, mode);
    if mode == SizeMode::Count || exact.ends_with('B') {
        return exact;
    }
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if capacity >= 1 << shift {
            return format!("{:.1}{unit}", capacity as f64 / (1u64 << shift) as f64);
        }
    }
    exact
}

/// A sample line and the name of each algorithm, top to bottom.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    workload: &WorkloadReport,
    styles: &[LineStyle],
) -> Result<(), Error> {
    for (row, (algorithm, style)) in workload.algorithms.iter().zip(styles).enumerate() {
        let y = 40 + 24 * row as i32;
        let stroke = style.colour.stroke_width(2);
        if style.dashed {
            for x in [8, 20] {
                area.draw(&PathElement::new(vec![(x, y), (x + 8, y)], stroke))
                    .map_err(plot_error)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(8, y), (36, y)], stroke))
                .map_err(plot_error)?;
        }
        area.draw(&Text::new(
            algorithm.name(),
            (44, y - 8),
            ("sans-serif", 16).into_font().color(&BLACK),
        ))
        .map_err(plot_error)?;
    }
    Ok(())
}

fn lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    workload: &WorkloadReport,
    styles: &[LineStyle],
    divisor: f64,
) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (&algorithm, style) in workload.algorithms.iter().zip(styles) {
        let points: Vec<(f64, f64)> = workload
            .capacities
            .iter()
            .filter_map(|&capacity| workload.get(algorithm, capacity))
            .map(|m| (m.capacity as f64 / divisor, m.hit_ratio * 100.0))
            .collect();
        let stroke = style.colour.stroke_width(2);
        if style.dashed {
            chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, stroke))
                .map_err(plot_error)?;
        } else {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), stroke))
                .map_err(plot_error)?;
        }
        chart
            .draw_series(points.iter().map(|&point| Circle::new(point, 3, style.colour.filled())))
            .map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::CapacitySpec;
    use crate::engine::{Plan, simulate};
    use crate::synthetic::SyntheticSpec;

    #[test]
    fn byte_axis_labels_are_short() {
        assert_eq!(axis_label(128 << 20, SizeMode::Bytes), "128MiB");
        assert_eq!(axis_label(101_600_000, SizeMode::Bytes), "96.9MiB");
        assert_eq!(axis_label(1000, SizeMode::Bytes), "1000");
        assert_eq!(axis_label(1 << 20, SizeMode::Count), "1048576");
    }

    #[test]
    fn draws_one_chart_per_workload_with_a_legend() {
        let traces: Vec<_> = ["zipf:0.9,keys=500,requests=5000", "uniform,keys=300,requests=3000"]
            .iter()
            .map(|spec| spec.parse::<SyntheticSpec>().unwrap().generate(SizeMode::Count))
            .collect();
        for capacities in [
            vec![CapacitySpec::Units(10), CapacitySpec::Units(400)],
            vec![CapacitySpec::Units(50)],
        ] {
            let plan = Plan {
                algorithms: Algorithm::parse_list("lru,fifo,opt,belady").unwrap(),
                capacities,
                mode: SizeMode::Count,
                threads: 1,
            };
            let svg = render_svg(&simulate(&traces, &plan, &()).unwrap()).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
            assert!(svg.contains("zipf:0.9,keys=500,requests=5000 (5000 requests)"));
            assert!(svg.contains("uniform,keys=300"));
            assert!(
                svg.contains(">\nbelady\n</text>") && svg.contains(">\nlru\n</text>"),
                "legend missing"
            );
        }
    }
}
