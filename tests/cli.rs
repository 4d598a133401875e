//! End-to-end tests of `csgis smooth` through the binary, with the tiny reference network.

mod util;

use std::path::Path;

use image::{DynamicImage, ImageBuffer, Luma, Rgb};
use util::{assert_exit, load, max_diff_u8, stderr, TestEnv};

#[test]
fn a_corrupt_file_fails_alone_and_the_batch_goes_on() {
    let env = TestEnv::new();
    env.write_rgb("in/a.png", 40, 30);
    env.write_rgb("in/c.png", 33, 21);
    std::fs::write(env.path("in/b.png"), b"\x89PNG\r\n\x1a\n this is not really a png").unwrap();
    let o = env.smooth(&["in/a.png", "in/b.png", "in/c.png", "-o", "out"], None);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("in/b.png"), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("in/b.png")).count(), 1, "{err}");
    assert!(env.path("out/a.png").exists() && env.path("out/c.png").exists());
    assert!(!env.path("out/b.png").exists());
    let leftovers: Vec<_> = std::fs::read_dir(env.path("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary files remain: {leftovers:?}");
}

#[test]
fn existing_outputs_are_refused_then_skipped_then_replaced() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 24, 20);
    assert_exit(&env.smooth(&["a.png", "-o", "out"], None), 0);
    std::fs::write(env.path("out/a.png"), b"sentinel").unwrap();
    let o = env.smooth(&["a.png", "-o", "out"], None);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("exists (use --overwrite or --skip-existing)"));
    assert_eq!(std::fs::read(env.path("out/a.png")).unwrap(), b"sentinel");
    assert_exit(&env.smooth(&["a.png", "-o", "out", "--skip-existing"], None), 0);
    assert_eq!(std::fs::read(env.path("out/a.png")).unwrap(), b"sentinel");
    assert_exit(&env.smooth(&["a.png", "-o", "out", "--overwrite"], None), 0);
    load(&std::fs::read(env.path("out/a.png")).unwrap());
}

#[test]
fn beside_the_input_with_a_suffix_and_inputs_are_never_touched() {
    let env = TestEnv::new();
    let a = env.write_rgb("a.png", 16, 16);
    let before = std::fs::read(&a).unwrap();
    assert_exit(&env.smooth(&["a.png"], None), 0);
    assert!(env.path("a.smooth.png").exists());
    assert_exit(&env.smooth(&["a.png", "--suffix", "", "--overwrite"], None), 1);
    assert_eq!(std::fs::read(&a).unwrap(), before);
}

#[test]
fn stdin_to_stdout_matches_the_file_path() {
    let env = TestEnv::new();
    let a = env.write_rgb("a.png", 31, 17);
    assert_exit(&env.smooth(&["a.png", "-o", "out"], None), 0);
    let from_file = load(&std::fs::read(env.path("out/a.png")).unwrap());
    let o = env.smooth(&["-"], Some(&std::fs::read(a).unwrap()));
    assert_exit(&o, 0);
    let from_pipe = load(&o.stdout);
    assert_eq!(from_file.to_rgb8(), from_pipe.to_rgb8());
}

#[test]
fn sixteen_bit_in_gives_sixteen_bit_out() {
    let env = TestEnv::new();
    let img = ImageBuffer::from_fn(20, 12, |x, y| Rgb([x as u16 * 3000, y as u16 * 5000, 40000u16]));
    DynamicImage::ImageRgb16(img).save(env.path("deep.png")).unwrap();
    assert_exit(&env.smooth(&["deep.png", "-o", "out"], None), 0);
    let out = load(&std::fs::read(env.path("out/deep.png")).unwrap());
    assert!(matches!(out, DynamicImage::ImageRgb16(_)), "{:?}", out.color());
    assert_exit(&env.smooth(&["deep.png", "-o", "tif", "-f", "tiff"], None), 0);
    let out = load(&std::fs::read(env.path("tif/deep.tiff")).unwrap());
    assert!(matches!(out, DynamicImage::ImageRgb16(_)), "{:?}", out.color());
}

#[test]
fn alpha_passes_through_untouched_and_gray_stays_gray() {
    let env = TestEnv::new();
    let a = env.write_rgba("a.png", 23, 19);
    assert_exit(&env.smooth(&["a.png", "-o", "out"], None), 0);
    let (input, output) = (load(&std::fs::read(a).unwrap()).to_rgba8(), load(&std::fs::read(env.path("out/a.png")).unwrap()));
    let output = output.to_rgba8();
    let alpha = |i: &image::RgbaImage| i.pixels().map(|p| p.0[3]).collect::<Vec<_>>();
    assert_eq!(alpha(&input), alpha(&output));

    let gray = ImageBuffer::from_fn(15, 9, |x, y| Luma([(x * 10 + y) as u8]));
    DynamicImage::ImageLuma8(gray).save(env.path("g.png")).unwrap();
    assert_exit(&env.smooth(&["g.png", "-o", "out"], None), 0);
    assert!(matches!(load(&std::fs::read(env.path("out/g.png")).unwrap()), DynamicImage::ImageLuma8(_)));
}

#[test]
fn tiling_stays_within_one_level_of_the_untiled_result() {
    let env = TestEnv::new();
    std::fs::copy(util::fixture("images/structure_chelsea_160x120.png"), env.path("cam.png")).unwrap();
    assert_exit(&env.smooth(&["cam.png", "-o", "whole"], None), 0);
    assert_exit(&env.smooth(&["cam.png", "-o", "tiled", "--tile", "64"], None), 0);
    let whole = load(&std::fs::read(env.path("whole/cam.png")).unwrap());
    let tiled = load(&std::fs::read(env.path("tiled/cam.png")).unwrap());
    let d = max_diff_u8(&whole, &tiled);
    eprintln!("tile 64, default overlap: max 8-bit difference {d}");
    assert!(d <= 1, "max difference {d}");
}

#[test]
fn strength_zero_returns_the_input() {
    let env = TestEnv::new();
    let a = env.write_rgb("a.png", 18, 14);
    assert_exit(&env.smooth(&["a.png", "-o", "out", "--strength", "0"], None), 0);
    let out = load(&std::fs::read(env.path("out/a.png")).unwrap());
    assert_eq!(max_diff_u8(&out, &load(&std::fs::read(a).unwrap())), 0);
}

#[test]
fn recursive_directories_are_mirrored_and_globs_expanded() {
    let env = TestEnv::new();
    env.write_rgb("photos/x/a.png", 12, 12);
    env.write_rgb("photos/b.png", 12, 12);
    std::fs::write(env.path("photos/.DS_Store"), b"junk").unwrap();
    assert_exit(&env.smooth(&["-r", "photos", "-o", "out", "-f", "jpg"], None), 0);
    assert!(env.path("out/x/a.jpg").exists() && env.path("out/b.jpg").exists());
    let o = env.smooth(&["photos/**/*.png", "-o", "globbed", "--dry-run"], None);
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    assert!(!env.path("globbed").exists(), "dry run writes nothing");
}

#[test]
fn shards_split_the_batch_and_reports_are_json_lines() {
    let env = TestEnv::new();
    for i in 0..5 {
        env.write_rgb(&format!("in/{i}.png"), 10, 10);
    }
    let mut total = 0;
    for s in ["0/2", "1/2"] {
        let o = env.smooth(&["in/*.png", "-o", "out", "--shard", s, "--report", "-"], None);
        assert_exit(&o, 0);
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], "ok");
            assert_eq!(v["width"], 10);
            assert_eq!(v["device"], "cpu");
            total += 1;
        }
    }
    assert_eq!(total, 5);
}

#[test]
fn edges_are_written_as_grayscale() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 21, 13);
    assert_exit(&env.smooth(&["a.png", "-o", "out", "--edges", "edges"], None), 0);
    let e = load(&std::fs::read(env.path("edges/a.edges.png")).unwrap());
    assert!(matches!(e, DynamicImage::ImageLuma8(_)));
}

#[test]
fn setup_errors_exit_2_before_any_work() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 8, 8);
    env.write_rgb("b.png", 8, 8);
    std::fs::write(env.path("bad.safetensors"), b"garbage").unwrap();
    let o = env.run(&["smooth", "--weights", "bad.safetensors", "a.png", "-o", "out"], None);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("bad.safetensors"), "{}", stderr(&o));
    let o = env.smooth(&["a.png", "b.png", "-o", "-"], None);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("only one input can be written to stdout"));
    let o = env.smooth(&["--tile", "3", "a.png"], None);
    assert_exit(&o, 2);
    let o = env.run(&["smooth", "--device", "cuda", "a.png", "-o", "out"], None);
    if !cfg!(feature = "cuda") {
        assert_exit(&o, 2);
        assert!(stderr(&o).contains("--features cuda"), "{}", stderr(&o));
    }
    assert!(!Path::new(&env.path("out/a.png")).exists());
}

#[test]
fn missing_inputs_and_huge_images_are_per_file_errors() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 30, 30);
    let o = env.smooth(&["a.png", "nope.png", "-o", "out", "--max-pixels", "100"], None);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("nope.png: no such file"), "{err}");
    assert!(err.contains("exceeds --max-pixels 100"), "{err}");
}

#[cfg(not(csgis_embedded_weights))]
#[test]
fn without_embedded_weights_the_error_says_so() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 8, 8);
    let o = env.run(&["smooth", "a.png", "-o", "out"], None);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--weights"), "{}", stderr(&o));
}

#[cfg(csgis_embedded_weights)]
#[test]
fn embedded_weights_smooth_without_flags() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 40, 30);
    let o = env.run(&["smooth", "a.png", "-o", "out"], None);
    assert_exit(&o, 0);
    let img = image::open(env.path("out/a.png")).expect("output written").to_rgb8();
    assert_eq!(img.dimensions(), (40, 30));
}

#[test]
fn classical_methods_share_the_batch_cli() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 40, 30);
    for m in ["bilateral", "guided", "rgf", "l0", "rtv", "wls", "ils", "sdf", "fgs"] {
        let o = env.run(&["smooth", "--method", m, "a.png", "-o", m], None);
        assert_exit(&o, 0);
        assert!(env.path(&format!("{m}/a.png")).exists(), "{m}");
    }
    let o = env.run(&["smooth", "--method", "rtv", "--kappa", "2", "a.png", "-o", "x"], None);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--kappa does not apply to --method rtv"), "{}", stderr(&o));
    let o = env.run(&["smooth", "--method", "fgs", "--attenuation", "2", "a.png", "-o", "x"], None);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("attenuation"), "{}", stderr(&o));
}

#[test]
fn eval_prints_json_lines_and_a_summary() {
    let env = TestEnv::new();
    env.write_rgb("gt/a.png", 30, 20);
    env.write_rgb("gt/b.png", 25, 25);
    env.write_rgb("pred/a.png", 30, 20);
    std::fs::copy(env.path("gt/b.png"), env.path("pred/b.png")).unwrap();
    let o = env.run(&["eval", "--pred", "pred", "--gt", "gt", "--json"], None);
    assert_exit(&o, 0);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["count"], 2);
    assert!((lines[1]["ssim"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    let o = env.run(&["eval", "--input", "pred", "--gt", "gt", "--method", "guided", "--sweep", "--json"], None);
    assert_exit(&o, 0);
    let last: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert!(last["method"].as_str().unwrap().starts_with("best guided"), "{last}");
}

#[test]
fn converted_checkpoints_run_like_the_safetensors() {
    let env = TestEnv::new();
    env.write_rgb("a.png", 26, 18);
    assert_exit(&env.smooth(&["a.png", "-o", "ref"], None), 0);
    let reference = std::fs::read(env.path("ref/a.png")).unwrap();
    for ckpt in ["checkpoint.pth", "checkpoint-legacy.pth"] {
        let src = util::fixture(&format!("jess-w8-n1/{ckpt}"));
        let o = env.run(&["convert", src.to_str().unwrap(), "-o", "w.safetensors"], None);
        assert_exit(&o, 0);
        assert!(stderr(&o).contains("N = 1, C = 8"), "{}", stderr(&o));
        let o = env.run(&["smooth", "--weights", "w.safetensors", "a.png", "-o", ckpt], None);
        assert_exit(&o, 0);
        assert_eq!(std::fs::read(env.path(&format!("{ckpt}/a.png"))).unwrap(), reference, "{ckpt}");
    }
    std::fs::write(env.path("junk.pth"), b"not a checkpoint").unwrap();
    let o = env.run(&["convert", "junk.pth", "-o", "j.safetensors"], None);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("junk.pth"), "{}", stderr(&o));
}

/// `dataset blend` against eq. 14–16 computed here directly, with a texture smaller than the GT
/// (tiled from the top-left): grey = 0.299 R + 0.587 G + 0.114 B, minus its mean over the
/// pixels used, added to every channel, clipped. Within 1 on the 0–255 scale.
#[test]
fn dataset_blend_matches_eq_14_to_16() {
    let env = TestEnv::new();
    let (gw, gh, tw, th) = (37u32, 23u32, 10u32, 7u32);
    let gt = image::RgbImage::from_fn(gw, gh, |x, y| image::Rgb([(x * 6) as u8, (y * 9) as u8, 128]));
    let tex = image::RgbImage::from_fn(tw, th, |x, y| image::Rgb([(x * 25) as u8, ((x + y) * 15) as u8, (y * 36) as u8]));
    gt.save(env.path("gt.png")).unwrap();
    tex.save(env.path("tex.png")).unwrap();
    let out = env.run(&["dataset", "blend", "--gt", "gt.png", "--texture", "tex.png", "-o", "blend.png"], None);
    assert_exit(&out, 0);
    let got = image::open(env.path("blend.png")).unwrap().to_rgb8();
    let grey = |x: u32, y: u32| {
        let p = tex.get_pixel(x % tw, y % th).0;
        (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0
    };
    let n = (gw * gh) as f64;
    let mean = (0..gh).flat_map(|y| (0..gw).map(move |x| (x, y))).map(|(x, y)| grey(x, y)).sum::<f64>() / n;
    for (x, y, p) in got.enumerate_pixels() {
        for c in 0..3 {
            let want = ((gt.get_pixel(x, y).0[c] as f64 / 255.0 + grey(x, y) - mean).clamp(0.0, 1.0) * 255.0).round();
            assert!((p.0[c] as f64 - want).abs() <= 1.0, "({x},{y}) channel {c}: {} vs {want}", p.0[c]);
        }
    }
    // A second run refuses to overwrite; the output is never one of the inputs.
    assert_exit(&env.run(&["dataset", "blend", "--gt", "gt.png", "--texture", "tex.png", "-o", "blend.png"], None), 2);
    assert_exit(&env.run(&["dataset", "blend", "--gt", "gt.png", "--texture", "tex.png", "-o", "gt.png", "--overwrite"], None), 2);
}

#[test]
fn parallel_files_keep_the_input_order_and_per_file_errors() {
    let env = TestEnv::new();
    for i in 0..12 {
        env.write_rgb(&format!("in/{i:02}.png"), 24 + i, 20);
    }
    std::fs::write(env.path("in/05.png"), b"not an image").unwrap();
    let o = env.run(&["smooth", "--method", "guided", "-j", "4", "in/*.png", "-o", "out", "--report", "-"], None);
    assert_exit(&o, 1);
    let inputs: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["input"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..12).map(|i| format!("in/{i:02}.png")).collect();
    assert_eq!(inputs, expected, "report lines out of input order");
    assert!(stderr(&o).contains("in/05.png: unknown image format"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 11);
}

/// Ctrl-C in the middle of a batch: exit 130, a line saying how many inputs were finished,
/// and no temporary or partial file.
#[cfg(unix)]
#[test]
fn sigint_finishes_the_files_in_flight_leaves_no_temporary_file_and_exits_130() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let env = TestEnv::new();
    let total = 400;
    for i in 0..total {
        env.write_rgb(&format!("in/{i:03}.png"), 48, 40);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_csgis"))
        .args(["smooth", "--method", "l0", "-j", "2", "in/*.png", "-o", "out"])
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn csgis");
    // Wait until the batch is under way, then interrupt it.
    let start = Instant::now();
    while std::fs::read_dir(env.path("out")).map_or(0, |d| d.count()) < 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "no output after 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the batch ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "stderr:\n{err}");
    let names: Vec<String> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp") && !n.starts_with(".csgis-")), "temporary files left: {names:?}");
    let finished = format!("interrupted: {} of {total} inputs finished", names.len());
    assert!(err.contains(&finished), "expected '{finished}' in:\n{err}");
    assert!(names.len() < total);
    for n in &names {
        image::open(env.path("out").join(n)).unwrap_or_else(|e| panic!("{n} is not a whole image: {e}"));
    }
}
