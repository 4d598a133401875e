//! The committed man pages in man/ must equal what the clap definition renders.
//! Run `REGENERATE=1 cargo test --test man` to rewrite them after changing the CLI.

use std::path::Path;

#[test]
fn man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = csgis::cli::man::render_man_pages().expect("render");
    if std::env::var_os("REGENERATE").is_some() {
        std::fs::create_dir_all(&dir).expect("mkdir man");
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text).expect("write man page");
        }
        return;
    }
    for (name, text) in &pages {
        let committed = std::fs::read(dir.join(name))
            .unwrap_or_else(|_| panic!("man/{name} is missing: run REGENERATE=1 cargo test --test man"));
        assert!(committed == *text, "man/{name} is stale: run REGENERATE=1 cargo test --test man");
    }
}

#[test]
fn completions_render_for_bash() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_csgis"))
        .args(["completions", "bash"])
        .output()
        .expect("run csgis");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--tile-overlap"));
}
