//! CPU inference benchmark: milliseconds per image at 256² and 512² for N = 12 (C = 64), at
//! 1024² for csgis-lite (widths 16/32/64/128), and peak resident memory of
//! `csgis smooth --tile auto` on a 24-megapixel image.
//!
//! Run with `cargo bench --bench model` (release profile). Prints a Markdown table. Timing
//! does not depend on the weights' values, so the network is randomly initialised.
//! Set `CSGIS_BENCH_24MP_SECONDS` to bound the 24 MP run (default 240 s; the peak is reached
//! on the first tile, since every tile has the same size); `CSGIS_BENCH_SKIP_24MP=1` leaves that
//! run out; `CSGIS_BENCH_SIDES=256` (a comma list) times only those CSGIS-Net sizes.
//! `bench/side_by_side.sh` parses the tables; keep their columns.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use csgis::model::{CsgisNet, LiteConfig, LiteNet, NetConfig, NetOutput};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time_forward(forward: impl Fn(&Tensor) -> NetOutput, side: usize, repeats: usize) -> f64 {
    let x = Tensor::rand(0f32, 1f32, (1, 3, side, side), &Device::Cpu).expect("input");
    forward(&x);
    let times = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            let out = forward(&x);
            let _ = out.s1.sum_all().and_then(|s| s.to_scalar::<f32>());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

/// Peak RSS (VmHWM, MiB) of a process, polled until it exits or `limit` passes.
fn run_and_watch(mut cmd: Command, limit: Duration) -> (f64, bool, Duration) {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn csgis");
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kb) = text.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()) {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            assert!(st.success(), "csgis failed: {err}");
            return (peak_kb as f64 / 1024.0, true, start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (peak_kb as f64 / 1024.0, false, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The randomly initialised weights of `varmap` as plain tensors, as `csgis smooth` loads a
/// file: a forward over `Var`s records its graph and keeps every feature map alive until the
/// output is dropped.
fn frozen(varmap: &VarMap) -> VarBuilder<'static> {
    let data = varmap.data().lock().expect("varmap lock");
    let tensors = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect();
    VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)
}

fn main() {
    csgis::memory::keep_freed_memory();
    let threads = candle_core::utils::get_num_threads();
    let cfg = NetConfig::CSGIS;
    let varmap = VarMap::new();
    CsgisNet::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).expect("build");
    let net = CsgisNet::new(&cfg, frozen(&varmap)).expect("build").fold().expect("fold");
    println!(
        "# csgis CPU inference, N = {}, C = {}, {} threads, f32, gemm kernels {}, 3×3 conv {}\n",
        cfg.blocks,
        cfg.channels,
        threads,
        csgis::model::kernel_isa(),
        csgis::model::conv_kernel()
    );
    println!("| size | ms / image (median of 3 at 256², 2 at 512²; 1 warm-up) | GMAC/s |");
    println!("|---|---|---|");
    // `CSGIS_BENCH_SIDES=256` (a comma list) keeps only those sizes, for profiling.
    let sides: Vec<usize> = std::env::var("CSGIS_BENCH_SIDES")
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|_| vec![256, 512]);
    for side in sides {
        let ms = time_forward(|x| net.forward_t(x, false).expect("forward"), side, if side > 256 { 2 } else { 3 });
        let gmacs = (cfg.macs_per_pixel() * side * side) as f64 / 1e9 / (ms / 1e3);
        println!("| {side}² | {ms:.0} | {gmacs:.1} |");
    }


    let lite_cfg = LiteConfig::default();
    let lite_map = VarMap::new();
    LiteNet::new(&lite_cfg, VarBuilder::from_varmap(&lite_map, DType::F32, &Device::Cpu)).expect("build lite");
    let lite = LiteNet::new(&lite_cfg, frozen(&lite_map)).expect("build lite");
    let [w0, w1, w2, w3] = lite_cfg.widths;
    println!("\n# csgis-lite CPU inference, widths {w0}/{w1}/{w2}/{w3}, {threads} threads, f32\n");
    println!("| size | ms / image (median of 3; 1 warm-up) | GMAC/s |");
    println!("|---|---|---|");
    for side in [1024] {
        let ms = time_forward(|x| lite.forward_t(x, false).expect("forward"), side, 3);
        let gmacs = (lite_cfg.macs_per_pixel() * side * side) as f64 / 1e9 / (ms / 1e3);
        println!("| {side}² | {ms:.0} | {gmacs:.1} |");
    }

    if std::env::var("CSGIS_BENCH_SKIP_24MP").is_ok_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let weights = dir.path().join("n12.safetensors");
    varmap.save(&weights).expect("save weights");
    let (w, h) = (6000u32, 4000u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8]));
    let input = dir.path().join("24mp.png");
    img.save(&input).expect("save 24 MP image");
    let limit = std::env::var("CSGIS_BENCH_24MP_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(240);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_csgis"));
    cmd.args(["smooth", "-q", "--tile", "auto", "--weights"]).arg(&weights).arg(&input).arg("-o").arg(dir.path().join("out"));
    let (peak, finished, elapsed) = run_and_watch(cmd, Duration::from_secs(limit));
    println!("\n| 24 MP (6000×4000), --tile auto, N = 12 | peak RSS | finished | wall |");
    println!("|---|---|---|---|");
    println!(
        "| csgis smooth | {peak:.0} MiB | {} | {:.0} s |",
        if finished { "yes" } else { "no (stopped; every tile is the same size, so the peak is reached on the first)" },
        elapsed.as_secs_f64()
    );
}
