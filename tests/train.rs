//! End-to-end training on a tiny fixture dataset (`tests/data/tiny-dataset`, made by
//! `csgis dataset synth` from the fixture photos, clip art and textures): every loss term of
//! eq. 11 is computed, the loss falls, and `--resume` continues exactly.
//!
//! The VGG16 and DeepLabv3+ weights here are random (the real VGG16 is 58 MB and is not
//! committed); they exercise the same code paths.

mod util;

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use csgis::train::deeplab::{DeepLabConfig, DeepLabV3Plus};
use csgis::train::vgg::{Vgg16Features, VggDepth};
use util::{assert_exit, TestEnv};

fn random_aux_weights(dir: &Path) {
    let vm = VarMap::new();
    Vgg16Features::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), VggDepth::Relu2_2).expect("vgg");
    vm.save(dir.join("vgg.safetensors")).expect("save vgg");
    let vm = VarMap::new();
    let cfg = DeepLabConfig { num_classes: 3, width_mult: 0.25, ..DeepLabConfig::default() };
    DeepLabV3Plus::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("deeplab");
    vm.save(dir.join("deeplab.safetensors")).expect("save deeplab");
}

fn train(env: &TestEnv, out: &str, steps: usize, resume: bool) {
    let data = util::fixture("tiny-dataset");
    let steps = steps.to_string();
    let mut args = vec![
        "train", "--data", data.to_str().unwrap(), "--out", out, "--preset", "tiny", "--crop", "32",
        "--batch", "2", "--steps", &steps, "--val-every", "6", "--val-samples", "2", "--lr", "0.005",
        "--vgg", "vgg.safetensors", "--seg-weights", "deeplab.safetensors", "--seg-width", "0.25",
        "--seg-classes", "3", "--device", "cpu", "--seed", "3",
    ];
    if resume {
        args.push("--resume");
    }
    assert_exit(&env.run(&args, None), 0);
}

fn step_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|v| v.get("loss").is_some())
        .collect()
}

#[test]
fn every_term_is_trained_the_loss_falls_and_resume_is_exact() {
    let env = TestEnv::new();
    random_aux_weights(env.dir.path());
    train(&env, "a", 24, false);
    let a = step_lines(&env.path("a/log.jsonl"));
    assert_eq!(a.len(), 24);
    for term in ["edge", "re", "dtv", "contrastive", "seg"] {
        assert!(a.iter().any(|l| l[term].as_f64().unwrap_or(0.0) > 0.0), "{term} never non-zero");
    }
    let mean = |ls: &[serde_json::Value]| ls.iter().map(|l| l["loss"].as_f64().unwrap()).sum::<f64>() / ls.len() as f64;
    let (first, last) = (mean(&a[..6]), mean(&a[18..]));
    eprintln!("mean loss, steps 1-6: {first:.4}; steps 19-24: {last:.4}");
    assert!(last < first, "loss did not fall: {first} -> {last}");
    for f in ["last.safetensors", "best.safetensors", "optimizer.safetensors", "state.json", "config.json"] {
        assert!(env.path("a").join(f).exists(), "{f}");
    }

    // Interrupted at step 12, then resumed: the same losses as the uninterrupted run.
    train(&env, "b", 12, false);
    train(&env, "b", 24, true);
    let b = step_lines(&env.path("b/log.jsonl"));
    assert_eq!(b.len(), 24);
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x["loss"].as_f64().unwrap(), y["loss"].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "resumed loss {y} != uninterrupted {x}");
    }

    // The checkpoint is a weights file that `smooth` runs.
    env.write_rgb("p.png", 40, 40);
    assert_exit(&env.run(&["smooth", "--weights", "a/best.safetensors", "p.png", "-o", "out"], None), 0);
}

#[test]
fn missing_auxiliary_weights_are_refused_with_the_way_out() {
    let env = TestEnv::new();
    let data = util::fixture("tiny-dataset");
    let o = env.run(&["train", "--data", data.to_str().unwrap(), "--out", "x", "--preset", "tiny", "--steps", "1"], None);
    assert_exit(&o, 2);
    let err = util::stderr(&o);
    assert!(err.contains("--no-contrastive"), "{err}");
}

/// Trains csgis-lite with sample-time textures for `steps` into `out`.
fn train_lite(env: &TestEnv, out: &str, steps: usize, resume: bool) {
    let data = util::fixture("tiny-dataset");
    let textures = util::fixture("images/textures");
    let steps = steps.to_string();
    let mut args = vec![
        "train", "--arch", "lite", "--lite-widths", "4,6,8,10", "--data", data.to_str().unwrap(),
        "--textures", textures.to_str().unwrap(), "--out", out, "--crop", "32", "--batch", "2",
        "--steps", &steps, "--val-every", "4", "--val-samples", "2", "--lr", "0.005",
        "--no-contrastive", "--no-semantic", "--device", "cpu", "--seed", "5",
    ];
    if resume {
        args.push("--resume");
    }
    assert_exit(&env.run(&args, None), 0);
}

#[test]
fn lite_trains_with_sample_time_textures_resumes_exactly_and_its_checkpoint_runs_without_flags() {
    let env = TestEnv::new();
    train_lite(&env, "a", 8, false);
    train_lite(&env, "b", 4, false);
    // Resumed from the run's own record: only --out (and the new step target).
    assert_exit(&env.run(&["train", "--out", "b", "--resume", "--steps", "8"], None), 0);
    let (a, b) = (step_lines(&env.path("a/log.jsonl")), step_lines(&env.path("b/log.jsonl")));
    assert_eq!((a.len(), b.len()), (8, 8));
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x["loss"].as_f64().unwrap(), y["loss"].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "resumed loss {y} != uninterrupted {x}");
    }
    // A flag that contradicts the record is refused, naming both values.
    let o = env.run(&["train", "--out", "b", "--resume", "--batch", "3", "--steps", "9"], None);
    assert_exit(&o, 2);
    assert!(util::stderr(&o).contains("--batch 3 contradicts the run's record (--batch 2"), "{}", util::stderr(&o));
    // The record passed back with --config reproduces the run's first losses exactly.
    let config = env.path("a/config.json");
    assert_exit(&env.run(&["train", "--config", config.to_str().unwrap(), "--out", "c", "--steps", "3"], None), 0);
    let c = step_lines(&env.path("c/log.jsonl"));
    assert_eq!(c.len(), 3);
    for (x, y) in a.iter().zip(&c) {
        assert_eq!(x["loss"].as_f64(), y["loss"].as_f64(), "--config run differs");
    }
    // Every step draws a fresh texture: no two reconstruction losses repeat.
    let re: Vec<f64> = a.iter().map(|l| l["re"].as_f64().unwrap()).collect();
    assert!(re.windows(2).all(|w| w[0] != w[1]), "{re:?}");

    env.write_rgb("p.png", 37, 29);
    let o = env.run(&["smooth", "--weights", "a/last.safetensors", "p.png", "-o", "out"], None);
    assert_exit(&o, 0);
    let img = image::open(env.path("out/p.png")).expect("output").to_rgb8();
    assert_eq!(img.dimensions(), (37, 29));
}

/// Random DeepLabv3+ weights (width 0.25) with `classes` classes, saved as `rel`.
fn random_deeplab(dir: &Path, rel: &str, classes: usize) {
    let vm = VarMap::new();
    let cfg = DeepLabConfig { num_classes: classes, width_mult: 0.25, ..DeepLabConfig::default() };
    DeepLabV3Plus::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("deeplab");
    vm.save(dir.join(rel)).expect("save deeplab");
}

#[test]
fn deeplab_weights_with_another_class_count_are_refused_before_step_1() {
    let env = TestEnv::new();
    let data = util::fixture("tiny-dataset");
    random_deeplab(env.dir.path(), "dl5.safetensors", 5);
    let base = ["train", "--data", data.to_str().unwrap(), "--preset", "tiny", "--crop", "32",
        "--batch", "2", "--steps", "1", "--no-contrastive", "--seg-width", "0.25", "--device", "cpu"];
    // The dataset's classes.json (3 classes) against weights with 5.
    let o = env.run(&[&base[..], &["--seg-weights", "dl5.safetensors", "--out", "x"]].concat(), None);
    assert_exit(&o, 2);
    let err = util::stderr(&o);
    assert!(err.contains("dl5.safetensors has 5 segmentation classes, but dataset"), "{err}");
    assert!(err.contains("classes.json has 3"), "{err}");
    assert!(!env.path("x/log.jsonl").exists() || step_lines(&env.path("x/log.jsonl")).is_empty(), "a step ran");
    // Weights that match the dataset but not an explicit --seg-classes.
    random_deeplab(env.dir.path(), "dl3.safetensors", 3);
    let o = env.run(&[&base[..], &["--seg-weights", "dl3.safetensors", "--seg-classes", "4", "--out", "y"]].concat(), None);
    assert_exit(&o, 2);
    assert!(util::stderr(&o).contains("has 3 segmentation classes, but --seg-classes has 4"), "{}", util::stderr(&o));
}

#[test]
fn train_seg_takes_its_class_count_from_the_dataset() {
    let env = TestEnv::new();
    let data = util::fixture("tiny-dataset");
    let args = ["train", "seg", "--data", data.to_str().unwrap(), "--out", "seg", "--width", "0.25", "--steps", "1",
        "--batch", "2", "--crop", "32", "--device", "cpu"];
    let o = env.run(&args, None);
    assert_exit(&o, 0);
    assert!(util::stderr(&o).contains("(3 classes)"), "{}", util::stderr(&o));
    let n = DeepLabV3Plus::class_count(&env.path("seg/deeplab.safetensors")).expect("class count");
    assert_eq!(n, 3);
    // An explicit count that contradicts classes.json is refused, naming both.
    let o = env.run(&[&args[..], &["--classes", "21"]].concat(), None);
    assert_exit(&o, 2);
    assert!(util::stderr(&o).contains("--classes has 21 segmentation classes, but dataset"), "{}", util::stderr(&o));
}
