//! Learning curves of a training run, drawn from its `log.jsonl` with plotters: the total loss
//! and each term against the step (moving averages, log scale), validation PSNR and SSIM, and
//! the learning rate, as one PNG.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::{encode, write_atomic, EncodeOptions, Existing, OutFormat};
use crate::ops::Planes;

/// The font every label is drawn in (DejaVu Sans, embedded: no system fonts are needed).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Picture size in pixels.
const SIZE: (u32, u32) = (1400, 900);

/// Steps averaged in each point of the loss curves.
const SMOOTHING: usize = 25;

/// One run's log: per-step loss terms (name → (step, value)), validation points and the
/// learning rate.
#[derive(Debug, Default, Clone)]
pub struct RunLog {
    /// Each logged loss term (`loss` is the total) against the step.
    pub terms: BTreeMap<String, Vec<(f64, f64)>>,
    /// Validation PSNR (dB) against the step.
    pub val_psnr: Vec<(f64, f64)>,
    /// Validation SSIM against the step.
    pub val_ssim: Vec<(f64, f64)>,
    /// Learning rate against the step.
    pub lr: Vec<(f64, f64)>,
}

impl RunLog {
    /// Parses `log.jsonl`: one JSON object a line with `step` and either the loss terms (and
    /// `lr`) or `val_psnr`/`val_ssim`.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Json`] naming the first bad line.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut log = Self::default();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).map_err(|e| Error::json(path, format!("line {} is not a log record", i + 1), e))?;
            let Some(step) = value.get("step").and_then(serde_json::Value::as_f64) else { continue };
            for (key, v) in &value {
                let Some(v) = v.as_f64() else { continue };
                match key.as_str() {
                    "step" => {}
                    "val_psnr" => log.val_psnr.push((step, v)),
                    "val_ssim" => log.val_ssim.push((step, v)),
                    "lr" => log.lr.push((step, v)),
                    _ => log.terms.entry(key.clone()).or_default().push((step, v)),
                }
            }
        }
        Ok(log)
    }
}

/// Means of consecutive runs of `n` points (the last run may be shorter).
fn smoothed(points: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    points
        .chunks(n.max(1))
        .map(|c| {
            let k = c.len() as f64;
            (c.iter().map(|p| p.0).sum::<f64>() / k, c.iter().map(|p| p.1).sum::<f64>() / k)
        })
        .collect()
}

/// The range of `points`' values, widened a little (and never empty).
fn value_range(points: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(1e-12);
    (lo - pad, hi + pad)
}

/// Draws `log` into an RGB buffer of [`SIZE`].
fn draw(log: &RunLog, title: &str, buf: &mut [u8]) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    // Registering twice (a second plot in one process) is harmless: the font is the same.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let root = BitMapBackend::with_buffer(buf, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(|e| err(&e))?;
    let panels = root.split_evenly((2, 2));
    let last_step = log.terms.values().flatten().chain(&log.val_psnr).map(|p| p.0).fold(1.0, f64::max);

    // Loss terms, log scale.
    let curves: Vec<(&String, Vec<(f64, f64)>)> = log
        .terms
        .iter()
        .map(|(k, v)| (k, smoothed(&v.iter().copied().filter(|p| p.1 > 0.0).collect::<Vec<_>>(), SMOOTHING)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let (lo, hi) = value_range(curves.iter().flat_map(|(_, v)| v.iter().map(|p| p.1.log10())));
    let mut chart = ChartBuilder::on(&panels[0])
        .caption(format!("loss terms (means of {SMOOTHING} steps)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..last_step, (10f64.powf(lo)..10f64.powf(hi)).log_scale())
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc("step").x_label_formatter(&|x| format!("{x:.0}")).label_style(("sans-serif", 14)).draw().map_err(|e| err(&e))?;
    for (i, (name, v)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(v.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(if name.as_str() == "loss" { "loss (total)" } else { name.as_str() })
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;

    // Validation PSNR, SSIM, learning rate: one line each.
    type Label = fn(&f64) -> String;
    let singles: [(&str, &Vec<(f64, f64)>, RGBColor, Label); 3] = [
        ("validation PSNR (dB)", &log.val_psnr, BLUE, |y| format!("{y:.1}")),
        ("validation SSIM", &log.val_ssim, RED, |y| format!("{y:.3}")),
        ("learning rate", &log.lr, BLACK, |y| format!("{y:.2e}")),
    ];
    for (panel, (caption, points, color, label)) in panels[1..].iter().zip(singles) {
        let (lo, hi) = value_range(points.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..last_step, lo..hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
        chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2))).map_err(|e| err(&e))?;
        if points.len() <= 200 {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}

/// Draws the curves of the run whose log is `log_path` into the PNG `out` (written atomically,
/// replacing an older picture).
///
/// # Errors
/// Reading the log ([`RunLog::read`]), drawing ([`Error::Plot`]) or writing the file.
pub fn plot_log(log_path: &Path, out: &Path) -> Result<()> {
    let log = RunLog::read(log_path)?;
    let (w, h) = (SIZE.0 as usize, SIZE.1 as usize);
    let mut buf = vec![0u8; w * h * 3];
    let title = log_path.parent().and_then(Path::file_name).map_or_else(|| log_path.display().to_string(), |n| n.to_string_lossy().into_owned());
    draw(&log, &title, &mut buf).map_err(|reason| Error::Plot { path: out.to_path_buf(), reason })?;
    let planes = Planes::from_fn(3, h, w, |c, y, x| f32::from(buf[(y * w + x) * 3 + c]) / 255.0);
    let bytes = encode(&planes, &EncodeOptions::default(), OutFormat::Png, out)?;
    write_atomic(out, &bytes, Existing::Replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"loss":9.5,"re":2.0,"edge":7000.0,"dtv":0.2,"lr":0.001,"step":1}
{"loss":8.5,"re":1.9,"edge":6000.0,"dtv":0.2,"lr":0.001,"step":2}
{"step":2,"val_psnr":21.0,"val_ssim":0.6}
{"loss":7.5,"re":1.8,"edge":5000.0,"dtv":0.1,"lr":0.0005,"step":3}
{"step":3,"val_psnr":22.0,"val_ssim":0.7}
"#;

    #[test]
    fn reads_terms_validation_and_learning_rate() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, LOG).expect("write");
        let log = RunLog::read(&path)?;
        assert_eq!(log.terms.keys().collect::<Vec<_>>(), ["dtv", "edge", "loss", "re"]);
        assert_eq!(log.terms["edge"], [(1.0, 7000.0), (2.0, 6000.0), (3.0, 5000.0)]);
        assert_eq!(log.val_psnr, [(2.0, 21.0), (3.0, 22.0)]);
        assert_eq!(log.lr.last(), Some(&(3.0, 0.0005)));
        Ok(())
    }

    #[test]
    fn draws_a_png_with_ink_on_it() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, LOG).expect("write");
        let out = dir.path().join("curves.png");
        plot_log(&path, &out)?;
        let decoded = crate::io::decode_file(&out, 1 << 24)?;
        assert_eq!((decoded.rgb.w, decoded.rgb.h), (1400, 900));
        let dark = decoded.rgb.data.iter().filter(|&&v| v < 0.5).count();
        assert!(dark > 1000, "only {dark} dark samples: nothing was drawn");
        Ok(())
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"step\":1,\"loss\":1}\nnot json\n").expect("write");
        let e = RunLog::read(&path).expect_err("bad line");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn smoothing_averages_runs_of_points() {
        let s = smoothed(&[(1.0, 1.0), (2.0, 3.0), (3.0, 5.0)], 2);
        assert_eq!(s, [(1.5, 2.0), (3.0, 5.0)]);
    }
}
