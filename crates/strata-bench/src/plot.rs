//! Hit ratio against capacity, drawn as SVG.
//!
//! One chart per workload, stacked vertically in one SVG; one line per
//! algorithm, the online policies in colour and the offline bounds dashed in
//! black (`opt`) and grey (`belady`). The capacity axis is logarithmic when
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

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    workload: &WorkloadReport,
    mode: SizeMode,
) -> Result<(), Error> {
    let (Some(&smallest), Some(&largest)) = (workload.capacities.first(), workload.capacities.last()) else {
        return Ok(());
    };
    let percents: Vec<f64> = workload.results.iter().map(|m| m.hit_ratio * 100.0).collect();
    let low = percents.iter().copied().fold(f64::INFINITY, f64::min);
    let high = percents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y_range = ((low - 5.0).max(0.0) / 5.0).floor() * 5.0..((high + 5.0).min(100.0) / 5.0).ceil() * 5.0;
    let unit = match mode {
        SizeMode::Count => "entries",
        SizeMode::Bytes => "bytes",
    };
    let title = format!("{} ({} requests)", workload.name, workload.requests);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56);
    let x_label = |x: &f64| capacity_label(x.round() as u64, mode);
    let (x_low, x_high) = (smallest as f64, largest as f64);
    if largest >= smallest.saturating_mul(20) {
        let mut chart = builder
            .build_cartesian_2d((x_low * 0.9..x_high * 1.1).log_scale(), y_range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(format!("capacity ({unit}, log scale)"))
            .y_desc("hit ratio (%)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .x_label_formatter(&x_label)
            .draw()
            .map_err(plot_error)?;
        lines(&mut chart, workload)
    } else {
        let pad = ((x_high - x_low) * 0.05).max(1.0);
        let mut chart = builder
            .build_cartesian_2d((x_low - pad)..(x_high + pad), y_range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(format!("capacity ({unit})"))
            .y_desc("hit ratio (%)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .x_label_formatter(&x_label)
            .draw()
            .map_err(plot_error)?;
        lines(&mut chart, workload)
    }
}

fn lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    workload: &WorkloadReport,
) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    let mut online = 0;
    for &algorithm in &workload.algorithms {
        let points: Vec<(f64, f64)> = workload
            .capacities
            .iter()
            .filter_map(|&capacity| workload.get(algorithm, capacity))
            .map(|m| (m.capacity as f64, m.hit_ratio * 100.0))
            .collect();
        let colour = match algorithm {
            Algorithm::Opt => BLACK,
            Algorithm::Belady => RGBColor(0x88, 0x88, 0x88),
            Algorithm::Policy(_) => {
                online += 1;
                COLOURS[(online - 1) % COLOURS.len()]
            }
        };
        let style = colour.stroke_width(2);
        let legend = move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2));
        if algorithm.is_offline() {
            chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))
                .map_err(plot_error)?
                .label(algorithm.name())
                .legend(legend);
        } else {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(plot_error)?
                .label(algorithm.name())
                .legend(legend);
        }
        chart
            .draw_series(points.iter().map(|&point| Circle::new(point, 3, colour.filled())))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Capacity;
    use crate::engine::{Plan, simulate};
    use crate::synthetic::SyntheticSpec;

    #[test]
    fn draws_one_chart_per_workload_with_a_legend() {
        let traces: Vec<_> = ["zipf:0.9,keys=500,requests=5000", "uniform,keys=300,requests=3000"]
            .iter()
            .map(|spec| spec.parse::<SyntheticSpec>().unwrap().generate(SizeMode::Count))
            .collect();
        for capacities in [
            vec![Capacity::Units(10), Capacity::Units(400)],
            vec![Capacity::Units(50)],
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
