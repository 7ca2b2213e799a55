//! Human views of a [`Report`]: the markdown report, the console table and the SVG
//! charts (plotters, SVG backend only). Everything here reads the report alone, so
//! `qk bench report` renders any file that follows the schema, GPU or not.
//!
//! Charts, per GEMM shape: throughput vs M, p50 latency with p95/p99 whiskers vs M, and
//! speedup over FP16 cuBLAS vs M with each candidate's ideal (the roofline ratio, 2× for
//! INT8 MMA); per decoder-layer model: tokens/s vs M. M is on a log2 axis; a measured
//! series is a [`SERIES_STROKE_PX`] line with one filled circle per point (ideal lines are
//! dashed, 1 px, without markers), so a chart's XML can be checked series by series.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::prelude::*;

use super::report::{BenchResult, Report, BASELINE_GEMM, BASELINE_LAYER};

/// Chart size, pixels.
const CHART_SIZE: (u32, u32) = (900, 560);
/// Stroke width of data lines (axes and whiskers are 1 px).
pub const SERIES_STROKE_PX: u32 = 2;
/// Marker radius, pixels.
const MARKER_RADIUS_PX: u32 = 4;

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite()).map_or("unknown".into(), |v| format!("{v:.digits$}"))
}

/// Results grouped by shape (n, k) in first-appearance order, GEMMs and decoder layers
/// apart.
fn groups(report: &Report, layers: bool) -> Vec<((u64, u64), Vec<&BenchResult>)> {
    let mut order: Vec<(u64, u64)> = Vec::new();
    let mut map: BTreeMap<(u64, u64), Vec<&BenchResult>> = BTreeMap::new();
    for r in report.results.iter().filter(|r| r.is_layer() == layers) {
        let key = (r.n, r.k);
        if !map.contains_key(&key) {
            order.push(key);
        }
        map.entry(key).or_default().push(r);
    }
    order.into_iter().map(|k| (k, map.remove(&k).unwrap_or_default())).collect()
}

/// Kernels of a group in first-appearance order, baseline first.
fn kernels_of(results: &[&BenchResult]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in results {
        if !out.contains(&r.kernel) {
            out.push(r.kernel.clone());
        }
    }
    out.sort_by_key(|k| k != BASELINE_GEMM && k != BASELINE_LAYER);
    out
}

fn shape_title(results: &[&BenchResult], (n, k): (u64, u64)) -> String {
    let label = results.iter().find_map(|r| r.label.clone()).unwrap_or_default();
    let label = label.split(" (").next().unwrap_or_default().to_string();
    if label.is_empty() {
        format!("K={k}, N={n}")
    } else {
        format!("{label} (K={k}, N={n})")
    }
}

fn gpu_of(report: &Report) -> String {
    report.env.gpu_name.clone().unwrap_or_else(|| "unknown GPU".into())
}

/// The markdown report: environment, configuration, calibration, one table per shape,
/// the launch plans of this crate's kernels (when recorded), and the decoder-layer
/// projection.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# qk-bench report ({})\n", report.schema);
    let _ = writeln!(md, "## Environment\n\n| field | value |\n|---|---|");
    for (k, v) in report.env.fields() {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let c = &report.config;
    let _ = writeln!(md, "\n## Configuration\n\n| setting | value |\n|---|---|");
    let show = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    let _ = writeln!(md, "| warm-up launches (discarded) | {} |", show(c.warmup.map(|v| v.to_string())));
    let _ = writeln!(md, "| timed launches per point | {} |", show(c.reps.map(|v| v.to_string())));
    let _ = writeln!(md, "| L2 rotation | {} |", show(c.l2_rotation.map(|v| v.to_string())));
    let _ = writeln!(md, "| CUDA graph mode | {} |", show(c.cuda_graph.map(|v| v.to_string())));
    let _ = writeln!(md, "| launches per graph replay | {} |", show(c.graph_launches.map(|v| v.to_string())));
    let _ = writeln!(md, "| bootstrap resamples | {} |", show(c.bootstrap_resamples.map(|v| v.to_string())));
    let cal = &report.calibration;
    let _ = writeln!(md, "\n## Calibration (measured in this run)\n\n| figure | value |\n|---|---|");
    let _ = writeln!(md, "| device-to-device copy, GB/s (read + write) | {} |", fmt_opt(cal.copy_gbps, 0));
    let _ = writeln!(
        md,
        "| best cuBLAS FP16, TFLOP/s (roofline compute peak) | {} |",
        fmt_opt(report.measured_fp16_peak_tflops(), 1)
    );
    let _ = writeln!(md, "| theoretical dense FP16 peak, TFLOP/s | {} |", fmt_opt(cal.fp16_peak_tflops_theoretical, 1));
    let _ = writeln!(md, "| cuBLAS FP16 compute type | {} |", show(cal.fp16_compute_type.clone()));
    let _ = writeln!(
        md,
        "\nTimes are per launch (CUDA events), µs. Speedup = p50 of the FP16 baseline / p50, with a bootstrap \
         95% CI of the ratio of medians. Roofline % = max(bytes / copy bandwidth, FLOPs / peak) / p50."
    );
    for (key, results) in groups(report, false) {
        let _ = writeln!(md, "\n## {}\n", shape_title(&results, key));
        let _ = writeln!(
            md,
            "| M | kernel | p50 µs | p95 µs | p99 µs | TFLOP/s | GB/s | speedup [95% CI] | roofline % | note |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        let mut rows = results.clone();
        rows.sort_by_key(|r| r.m);
        for r in rows {
            let best = fastest_at(&results, r.m) == Some(r.kernel.as_str());
            let s = r.stats;
            let speedup =
                r.speedup.map_or("unknown".into(), |c| format!("{:.2} [{:.2}, {:.2}]", c.ratio, c.ci_low, c.ci_high));
            let note = match (&r.skipped, best) {
                (Some(s), _) => format!("skipped: {s}"),
                (None, true) => "**best** (lowest p50 at this M)".to_string(),
                (None, false) => String::new(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.m,
                r.kernel,
                fmt_opt(s.map(|s| s.p50_us), 2),
                fmt_opt(s.map(|s| s.p95_us), 2),
                fmt_opt(s.map(|s| s.p99_us), 2),
                fmt_opt(r.tflops, 1),
                fmt_opt(r.gbps, 0),
                speedup,
                fmt_opt(r.roofline_pct, 1),
                note.replace('|', "/"),
            );
        }
    }
    let planned: Vec<&BenchResult> = report.results.iter().filter(|r| r.plan.is_some()).collect();
    if !planned.is_empty() {
        let _ = writeln!(
            md,
            "\n## Launch plans of this crate's kernels\n\n| kernel | M | N | K | plan |\n|---|---|---|---|---|"
        );
        for r in planned {
            let plan = r.plan.as_deref().unwrap_or_default().replace('|', "/");
            let _ = writeln!(md, "| {} | {} | {} | {} | {plan} |", r.kernel, r.m, r.n, r.k);
        }
    }
    let layers = groups(report, true);
    if !layers.is_empty() {
        let _ = writeln!(
            md,
            "\n## Decoder layer: projected throughput of the linear layers\n\nLinear layers only (fused QKV, O, \
             fused gate+up, down), captured as one CUDA graph per precision; attention, norms, activations and \
             sampling are excluded. Step time = layer time × layers; tokens/s = M / step time. M ≤ 256: decode \
             (M sequences, one token each); larger M: prefill (M prompt tokens)."
        );
    }
    for (key, results) in layers {
        let _ = writeln!(md, "\n### {}\n", shape_title(&results, key).replace(" decode", "").replace(" prefill", ""));
        let _ = writeln!(
            md,
            "| M | kernel | layer p50 µs | step ms | tokens/s | speedup [95% CI] |\n|---|---|---|---|---|---|"
        );
        let mut rows = results.clone();
        rows.sort_by_key(|r| r.m);
        for r in rows {
            let step_ms = r.stats.and_then(|s| r.layers.map(|l| s.p50_us * f64::from(l) / 1e3));
            let speedup =
                r.speedup.map_or("unknown".into(), |c| format!("{:.2} [{:.2}, {:.2}]", c.ratio, c.ci_low, c.ci_high));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                r.m,
                r.kernel,
                fmt_opt(r.stats.map(|s| s.p50_us), 1),
                fmt_opt(step_ms, 2),
                fmt_opt(r.tokens_per_s, 0),
                speedup
            );
        }
    }
    md
}

/// The end-of-run console table: per shape and M, each kernel's median µs, TFLOP/s and
/// speedup over FP16 cuBLAS; then the FP16 baseline's TFLOP/s at the largest M against
/// the device's theoretical peak.
pub fn console_table(report: &Report) -> String {
    let mut out = String::new();
    let gemms = groups(report, false).into_iter().map(|g| (g, false));
    for ((key, results), layer) in gemms.chain(groups(report, true).into_iter().map(|g| (g, true))) {
        let kernels = kernels_of(&results);
        let title = shape_title(&results, key);
        // A decoder-layer group spans decode and prefill batch sizes: drop the phase of
        // its first row from the title.
        let title = if layer { title.replace(" decode", "").replace(" prefill", "") } else { title };
        let _ = writeln!(out, "\n{title}");
        let _ = write!(out, "{:>6}", "M");
        for k in &kernels {
            let _ = write!(out, " | {:>30}", format!("{k}: p50 us, TFLOP/s, x"));
        }
        let _ = writeln!(out, " | best");
        let mut ms: Vec<u64> = results.iter().map(|r| r.m).collect();
        ms.sort_unstable();
        ms.dedup();
        for m in &ms {
            let _ = write!(out, "{m:>6}");
            for k in &kernels {
                let cell = results.iter().find(|r| r.m == *m && &r.kernel == k).map_or("-".into(), |r| {
                    if r.skipped.is_some() {
                        "skipped".to_string()
                    } else {
                        format!(
                            "{} {} {}",
                            fmt_opt(r.stats.map(|s| s.p50_us), 2),
                            fmt_opt(r.tflops, 1),
                            fmt_opt(r.speedup.map(|s| s.ratio), 2)
                        )
                    }
                });
                let _ = write!(out, " | {cell:>30}");
            }
            let _ = writeln!(out, " | {}", fastest_at(&results, *m).unwrap_or("-"));
        }
        if let Some(base) =
            results.iter().filter(|r| r.kernel == BASELINE_GEMM && r.tflops.is_some()).max_by_key(|r| r.m)
        {
            let peak = report.calibration.fp16_peak_tflops_theoretical;
            let pct = peak.zip(base.tflops).map(|(p, t)| 100.0 * t / p);
            let _ = writeln!(
                out,
                "FP16 cuBLAS at M={}: {} TFLOP/s = {}% of the theoretical dense FP16 peak ({} TFLOP/s)",
                base.m,
                fmt_opt(base.tflops, 1),
                fmt_opt(pct, 0),
                fmt_opt(peak, 0)
            );
        }
    }
    out
}

/// The kernel with the lowest median at batch `m` among `results` (one shape): what a
/// serving engine would dispatch to there.
fn fastest_at<'a>(results: &[&'a BenchResult], m: u64) -> Option<&'a str> {
    results
        .iter()
        .filter(|r| r.m == m && r.skipped.is_none())
        .filter_map(|r| r.stats.map(|s| (r.kernel.as_str(), s.p50_us)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

/// One line of a chart.
struct Series {
    name: String,
    /// (M, value)
    points: Vec<(u64, f64)>,
    /// (M, low, high) whiskers.
    whiskers: Vec<(u64, f64, f64)>,
    color: RGBColor,
    dashed: bool,
}

/// A color per kernel, stable across charts: the baseline black, the rest from
/// plotters' 99-color palette.
fn color_of(kernel: &str, kernels: &[String]) -> RGBColor {
    if kernel == BASELINE_GEMM || kernel == BASELINE_LAYER {
        return RGBColor(0, 0, 0);
    }
    let i = kernels.iter().position(|k| k == kernel).unwrap_or(0);
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Renders one chart; `log_y` plots log10 of the values (labels show the values).
fn chart(title: &str, y_desc: &str, series: &[Series], log_y: bool, y_floor_zero: bool) -> Option<String> {
    let ms: Vec<u64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.whiskers.iter().flat_map(|w| [w.1, w.2])))
        .filter(|v| v.is_finite() && (!log_y || *v > 0.0))
        .collect();
    if ms.is_empty() || ys.is_empty() {
        return None;
    }
    let tx = |m: u64| (m.max(1) as f64).log2();
    let ty = |v: f64| if log_y { v.log10() } else { v };
    let x_lo = ms.iter().map(|&m| tx(m)).fold(f64::INFINITY, f64::min) - 0.5;
    let x_hi = ms.iter().map(|&m| tx(m)).fold(f64::NEG_INFINITY, f64::max) + 0.5;
    let mut y_lo = ys.iter().map(|&v| ty(v)).fold(f64::INFINITY, f64::min);
    let mut y_hi = ys.iter().map(|&v| ty(v)).fold(f64::NEG_INFINITY, f64::max);
    if y_floor_zero {
        y_lo = y_lo.min(0.0);
    }
    let pad = ((y_hi - y_lo) * 0.08).max(if log_y { 0.1 } else { 0.05 * y_hi.abs().max(1.0) });
    y_lo -= if y_floor_zero && y_lo >= 0.0 { 0.0 } else { pad };
    y_hi += pad;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .ok()?;
        let x_fmt = |x: &f64| {
            let r = x.round();
            if (x - r).abs() < 1e-6 && r >= 0.0 {
                format!("{}", 2u64.pow(r as u32))
            } else {
                String::new()
            }
        };
        let y_fmt = |y: &f64| {
            let v = if log_y { 10f64.powf(*y) } else { *y };
            if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else if v.abs() >= 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.3}")
            }
        };
        chart
            .configure_mesh()
            .x_desc("batch size M (tokens), log2 axis")
            .y_desc(y_desc)
            .x_labels(((x_hi - x_lo).ceil() as usize + 1).max(2))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .draw()
            .ok()?;
        for s in series {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0))
                .map(|p| (tx(p.0), ty(p.1)))
                .collect();
            let style = ShapeStyle { color: s.color.to_rgba(), filled: false, stroke_width: SERIES_STROKE_PX };
            let color = s.color;
            let line = if s.dashed {
                // 1 px: only measured series are drawn at SERIES_STROKE_PX.
                chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style.stroke_width(1)))
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style))
            };
            line.ok()?.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], ShapeStyle::from(color).stroke_width(SERIES_STROKE_PX))
            });
            if !s.dashed {
                chart
                    .draw_series(
                        pts.iter().map(|&p| Circle::new(p, MARKER_RADIUS_PX, ShapeStyle::from(color).filled())),
                    )
                    .ok()?;
            }
            for &(m, lo, hi) in &s.whiskers {
                if !(lo.is_finite() && hi.is_finite()) || (log_y && lo <= 0.0) {
                    continue;
                }
                let x = tx(m);
                let cap = 0.06;
                let thin = ShapeStyle::from(color).stroke_width(1);
                chart
                    .draw_series([
                        PathElement::new(vec![(x, ty(lo)), (x, ty(hi))], thin),
                        PathElement::new(vec![(x - cap, ty(lo)), (x + cap, ty(lo))], thin),
                        PathElement::new(vec![(x - cap, ty(hi)), (x + cap, ty(hi))], thin),
                    ])
                    .ok()?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

fn series_of(
    results: &[&BenchResult],
    kernels: &[String],
    value: impl Fn(&BenchResult) -> Option<f64>,
    whisker: impl Fn(&BenchResult) -> Option<(f64, f64)>,
    skip_baseline: bool,
) -> Vec<Series> {
    kernels
        .iter()
        .filter(|k| !(skip_baseline && (*k == BASELINE_GEMM || *k == BASELINE_LAYER)))
        .map(|k| {
            let mut rs: Vec<&&BenchResult> = results.iter().filter(|r| &r.kernel == k).collect();
            rs.sort_by_key(|r| r.m);
            Series {
                name: k.clone(),
                points: rs.iter().filter_map(|r| value(r).map(|v| (r.m, v))).collect(),
                whiskers: rs.iter().filter_map(|r| whisker(r).map(|(lo, hi)| (r.m, lo, hi))).collect(),
                color: color_of(k, kernels),
                dashed: false,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Every chart of the report as (file name, SVG text). Charts with no data are omitted.
pub fn charts(report: &Report) -> Vec<(String, String)> {
    let gpu = gpu_of(report);
    let mut out = Vec::new();
    for (key, results) in groups(report, false) {
        let kernels = kernels_of(&results);
        let title = shape_title(&results, key);
        let stem = format!("{}x{}", key.1, key.0);
        let tput = series_of(&results, &kernels, |r| r.tflops, |_| None, false);
        if let Some(svg) =
            chart(&format!("{gpu}: {title}: throughput"), "throughput, TFLOP/s (log axis)", &tput, true, false)
        {
            out.push((format!("{stem}_throughput.svg"), svg));
        }
        let lat = series_of(
            &results,
            &kernels,
            |r| r.stats.map(|s| s.p50_us),
            |r| r.stats.map(|s| (s.p95_us, s.p99_us)),
            false,
        );
        let lat_title = format!("{gpu}: {title}: p50 latency, whiskers p95..p99");
        if let Some(svg) = chart(&lat_title, "latency per launch, µs (log axis)", &lat, true, false) {
            out.push((format!("{stem}_latency.svg"), svg));
        }
        let mut speed = series_of(
            &results,
            &kernels,
            |r| r.speedup.map(|s| s.ratio),
            |r| r.speedup.map(|s| (s.ci_low, s.ci_high)),
            true,
        );
        let ideals: Vec<Series> = speed
            .iter()
            .filter_map(|s| {
                let mut rs: Vec<&&BenchResult> = results.iter().filter(|r| r.kernel == s.name).collect();
                rs.sort_by_key(|r| r.m);
                let points: Vec<(u64, f64)> =
                    rs.iter().filter_map(|r| report.ideal_speedup(r).map(|v| (r.m, v))).collect();
                (!points.is_empty()).then(|| Series {
                    name: format!("ideal {}", s.name),
                    points,
                    whiskers: Vec::new(),
                    color: s.color,
                    dashed: true,
                })
            })
            .collect();
        speed.extend(ideals);
        let speed_title = format!("{gpu}: {title}: speedup over FP16 cuBLAS (95% CI)");
        if let Some(svg) = chart(&speed_title, "speedup over FP16 cuBLAS, x", &speed, false, true) {
            out.push((format!("{stem}_speedup.svg"), svg));
        }
    }
    for (key, results) in groups(report, true) {
        let kernels = kernels_of(&results);
        let title = shape_title(&results, key).replace(" decode", "").replace(" prefill", "");
        let tok = series_of(&results, &kernels, |r| r.tokens_per_s, |_| None, false);
        let t = format!("{gpu}: {title}: tokens/s vs batch size (linear layers only)");
        if let Some(svg) = chart(&t, "tokens/s, linear layers only (log axis)", &tok, true, false) {
            out.push((format!("layer_{}x{}_tokens_per_s.svg", key.0, key.1), svg));
        }
    }
    out
}
