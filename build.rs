//! Embeds `weights/csgis.safetensors` when it exists (see src/model/embedded.rs).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(csgis_embedded_weights)");
    println!("cargo::rerun-if-changed=weights");
    if std::path::Path::new("weights/csgis.safetensors").exists() {
        println!("cargo::rustc-cfg=csgis_embedded_weights");
    }
}
