//! Embeds `weights/lite.safetensors` (the default model) and `weights/csgis.safetensors`
//! (`--model full`) when they exist (see src/model/embedded.rs).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(csgis_embedded_weights)");
    println!("cargo::rustc-check-cfg=cfg(csgis_embedded_lite)");
    println!("cargo::rerun-if-changed=weights");
    if std::path::Path::new("weights/csgis.safetensors").exists() {
        println!("cargo::rustc-cfg=csgis_embedded_weights");
    }
    if std::path::Path::new("weights/lite.safetensors").exists() {
        println!("cargo::rustc-cfg=csgis_embedded_lite");
    }
}
