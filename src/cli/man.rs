//! Man pages rendered from the clap definition (clap_mangen): `csgis.1` and one page per
//! subcommand (`csgis-smooth.1`, ...). `tests/man.rs` keeps the committed pages in `man/`
//! current.

/// Every man page as (file name, roff text).
///
/// # Errors
/// When rendering fails (an I/O error on the in-memory buffer, which does not happen).
pub fn render_man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = super::command();
    let mut pages = Vec::new();
    let mut buf = Vec::new();
    clap_mangen::Man::new(root.clone()).render(&mut buf)?;
    pages.push(("csgis.1".to_string(), buf));
    for sub in root.get_subcommands() {
        let name = format!("csgis-{}", sub.get_name());
        let cmd = sub.clone().name(name.clone());
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        pages.push((format!("{name}.1"), buf));
    }
    Ok(pages)
}
