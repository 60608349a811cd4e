//! The SVG chart of `cargo xtask compare`: latency distribution and real-time factor per backend.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::compare::Row;

/// Draws latency box plots (when there are latencies) above RTF bars, one column per backend.
pub(crate) fn draw(
    path: &Path,
    rows: &[Row],
    latencies: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 640)).into_drawing_area();
    root.fill(&WHITE).context("svg")?;
    let (top, bottom) = root.split_vertically(340);
    let names: Vec<String> = rows.iter().map(|r| r.backend.clone()).collect();
    // A segmented axis over 0..=last has one segment per backend.
    let last = names.len().saturating_sub(1) as i32;
    let label = |i: &i32| {
        names
            .get(usize::try_from(*i).unwrap_or(usize::MAX))
            .cloned()
            .unwrap_or_default()
    };

    let with_latency: Vec<&(String, Vec<f64>)> =
        latencies.iter().filter(|(_, l)| !l.is_empty()).collect();
    let max_latency = with_latency
        .iter()
        .flat_map(|(_, l)| l.iter().copied())
        .fold(1.0_f64, f64::max) as f32;
    let mut chart = ChartBuilder::on(&top)
        .caption("utterance latency (ms)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d((0..last).into_segmented(), 0f32..max_latency * 1.1)
        .context("chart")?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => label(i),
            _ => String::new(),
        })
        .draw()
        .context("mesh")?;
    for (i, (name, values)) in latencies.iter().enumerate() {
        if values.is_empty() || name == "floor" {
            continue;
        }
        let quartiles = Quartiles::new(values);
        let index = i32::try_from(i).unwrap_or(0);
        chart
            .draw_series(std::iter::once(
                Boxplot::new_vertical(SegmentValue::CenterOf(index), &quartiles).width(30),
            ))
            .context("boxplot")?;
    }

    let max_rtf = rows.iter().map(|r| r.rtf).fold(0.01_f64, f64::max);
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "real-time factor (wall / audio seconds, lower is faster)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d((0..last).into_segmented(), 0f64..max_rtf * 1.15)
        .context("chart")?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => label(i),
            _ => String::new(),
        })
        .draw()
        .context("mesh")?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, row)| {
            let index = i32::try_from(i).unwrap_or(0);
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(index), 0.0),
                    (SegmentValue::Exact(index + 1), row.rtf),
                ],
                BLUE.mix(0.5).filled(),
            );
            bar.set_margin(0, 0, 20, 20);
            bar
        }))
        .context("bars")?;
    root.present()
        .with_context(|| format!("{}: cannot write the chart", path.display()))
}
