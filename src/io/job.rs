//! Turning command-line inputs into a list of jobs before any work starts: files, directories
//! (recursively, mirrored under the output directory), glob patterns, stdin and file lists;
//! output naming; collisions; `--shard`.
//!
//! Nothing here decodes an image or loads a model, so `--dry-run` and `--shard` are exact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::encode::OutFormat;

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Where a result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file, written atomically.
    File(PathBuf),
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdin => f.write_str("-"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("-"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An input found on the command line, with the path it has relative to its root (for
/// mirroring a directory tree under the output directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The input.
    pub input: Input,
    /// Relative path under the output directory (file name for plain files).
    pub relative: PathBuf,
}

/// One unit of work: an input, its output and the output format; or an input that already
/// failed planning (the error is reported with the other per-file errors).
#[derive(Debug, Clone)]
pub struct Job {
    /// The input.
    pub input: Input,
    /// The output, or why there is none.
    pub output: Result<(Output, OutFormat), String>,
}

/// Image file extensions picked up from directories.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "tif", "tiff"];

fn is_image_file(p: &Path) -> bool {
    let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
    let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    !hidden && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Source>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return errors.push(format!("{}: {e}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(root, &p, out, errors);
        } else if is_image_file(&p) {
            let relative = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            out.push(Source { input: Input::File(p), relative });
        }
    }
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn file_source(p: PathBuf) -> Source {
    let relative = PathBuf::from(p.file_name().unwrap_or(p.as_os_str()));
    Source { input: Input::File(p), relative }
}

/// Expands command-line arguments into sources. Directories need `recursive`; arguments that
/// do not exist and contain `*`, `?` or `[` are expanded as glob patterns (`**` recurses).
///
/// Returns the sources and one message per argument that gave nothing.
#[must_use]
pub fn expand_inputs(args: &[String], recursive: bool) -> (Vec<Source>, Vec<String>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for arg in args {
        let path = PathBuf::from(arg);
        if arg == "-" {
            sources.push(Source { input: Input::Stdin, relative: PathBuf::from("stdin") });
        } else if path.is_dir() {
            if recursive {
                walk(&path, &path, &mut sources, &mut errors);
            } else {
                errors.push(format!("{arg}: is a directory (use -r to smooth the images in it)"));
            }
        } else if path.exists() {
            sources.push(file_source(path));
        } else if has_glob_chars(arg) {
            match glob::glob(arg) {
                Err(e) => errors.push(format!("{arg}: bad glob pattern: {e}")),
                Ok(paths) => {
                    let before = sources.len();
                    sources.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()).map(file_source));
                    if sources.len() == before {
                        errors.push(format!("{arg}: no file matches this pattern"));
                    }
                }
            }
        } else {
            errors.push(format!("{arg}: no such file or directory"));
        }
    }
    (sources, errors)
}

/// Parses a `--files-from` list: one path a line, or NUL-separated. Empty entries are skipped.
#[must_use]
pub fn parse_file_list(text: &[u8], nul_separated: bool) -> Vec<String> {
    let sep = if nul_separated { b'\0' } else { b'\n' };
    text.split(|b| *b == sep)
        .map(|s| String::from_utf8_lossy(s).trim_end_matches('\r').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// How outputs are named.
#[derive(Debug, Clone)]
pub struct Naming {
    /// `None`: beside each input; `Some(dir)`: under this directory; stdout is [`Output::Stdout`].
    pub dir: Option<PathBuf>,
    /// Write to standard output.
    pub stdout: bool,
    /// Inserted before the extension (`.smooth` gives `photo.smooth.jpg`).
    pub suffix: String,
    /// Forced output format; `None` keeps the input's (PNG for stdin/stdout).
    pub format: Option<OutFormat>,
}

fn output_for(src: &Source, naming: &Naming) -> Result<(Output, OutFormat), String> {
    let in_ext = src.relative.extension().and_then(|e| e.to_str()).map(str::to_string);
    let in_format = in_ext.as_deref().and_then(OutFormat::from_extension);
    let format = naming.format.or(in_format).unwrap_or(OutFormat::Png);
    if naming.stdout || (src.input == Input::Stdin && naming.dir.is_none()) {
        return Ok((Output::Stdout, naming.format.unwrap_or(OutFormat::Png)));
    }
    // Keep the input's own spelling of the extension (JPEG stays .jpeg) unless the format changes.
    let ext = match (&in_ext, in_format) {
        (Some(e), Some(f)) if f == format => e.clone(),
        _ => format.extension().to_string(),
    };
    let stem = src.relative.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = format!("{stem}{}.{ext}", naming.suffix);
    let path = match (&naming.dir, &src.input) {
        (Some(dir), _) => dir.join(src.relative.with_file_name(name)),
        (None, Input::File(p)) => p.with_file_name(name),
        (None, Input::Stdin) => unreachable!("stdin without a directory goes to stdout"),
    };
    Ok((Output::File(path), format))
}

/// Whether two paths name the same file (by canonical path when both exist, else literally).
#[must_use]
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Plans every job: names outputs, refuses outputs that are inputs or that two inputs share,
/// and keeps only shard `index` of `count` (by position in the sorted input list).
#[must_use]
pub fn plan_jobs(mut sources: Vec<Source>, naming: &Naming, shard: Option<(usize, usize)>) -> Vec<Job> {
    sources.sort_by(|a, b| a.input.cmp(&b.input));
    sources.dedup_by(|a, b| a.input == b.input);
    if let Some((index, count)) = shard {
        sources = sources.into_iter().enumerate().filter(|(i, _)| i % count == index).map(|(_, s)| s).collect();
    }
    let inputs: Vec<PathBuf> =
        sources.iter().filter_map(|s| if let Input::File(p) = &s.input { Some(p.clone()) } else { None }).collect();
    let mut claimed: HashMap<PathBuf, String> = HashMap::new();
    sources
        .iter()
        .map(|src| {
            let output = output_for(src, naming).and_then(|(out, fmt)| {
                if let Output::File(p) = &out {
                    if inputs.iter().any(|i| same_file(i, p)) {
                        return Err(format!("output {} would overwrite an input", p.display()));
                    }
                    if let Some(first) = claimed.insert(p.clone(), src.input.to_string()) {
                        return Err(format!("output {} is also the output of {first}", p.display()));
                    }
                }
                Ok((out, fmt))
            });
            Job { input: src.input.clone(), output }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(dir: Option<&str>, suffix: &str) -> Naming {
        Naming { dir: dir.map(PathBuf::from), stdout: false, suffix: suffix.into(), format: None }
    }

    fn src(p: &str) -> Source {
        file_source(PathBuf::from(p))
    }

    #[test]
    fn outputs_go_beside_inputs_or_under_the_directory() {
        let jobs = plan_jobs(vec![src("a/b.jpeg"), src("c.png")], &naming(None, ".smooth"), None);
        assert_eq!(jobs[0].output.as_ref().unwrap().0, Output::File("a/b.smooth.jpeg".into()));
        let jobs = plan_jobs(vec![src("a/b.jpeg")], &naming(Some("out"), ""), None);
        assert_eq!(jobs[0].output.as_ref().unwrap(), &(Output::File("out/b.jpeg".into()), OutFormat::Jpeg));
        let mut n = naming(Some("out"), "");
        n.format = Some(OutFormat::WebP);
        let jobs = plan_jobs(vec![src("a/b.jpeg")], &n, None);
        assert_eq!(jobs[0].output.as_ref().unwrap().0, Output::File("out/b.webp".into()));
    }

    #[test]
    fn an_input_is_never_an_output_and_collisions_are_refused() {
        let jobs = plan_jobs(vec![src("x/a.png")], &naming(Some("x"), ""), None);
        assert!(jobs[0].output.as_ref().unwrap_err().contains("would overwrite an input"));
        let mut n = naming(Some("out"), "");
        n.format = Some(OutFormat::Png);
        let jobs = plan_jobs(vec![src("a.jpg"), src("a.png")], &n, None);
        assert!(jobs[0].output.is_ok());
        assert!(jobs[1].output.as_ref().unwrap_err().contains("also the output of a.jpg"));
    }

    #[test]
    fn stdin_goes_to_stdout_as_png_without_a_directory() {
        let s = Source { input: Input::Stdin, relative: "stdin".into() };
        let jobs = plan_jobs(vec![s], &naming(None, ".smooth"), None);
        assert_eq!(jobs[0].output.as_ref().unwrap(), &(Output::Stdout, OutFormat::Png));
    }

    #[test]
    fn shards_partition_the_sorted_inputs() {
        let all: Vec<Source> = (0..10).map(|i| src(&format!("f{i}.png"))).collect();
        let mut seen = Vec::new();
        for i in 0..3 {
            let jobs = plan_jobs(all.clone(), &naming(Some("o"), ""), Some((i, 3)));
            seen.extend(jobs.into_iter().map(|j| j.input));
        }
        seen.sort();
        assert_eq!(seen.len(), 10);
        seen.dedup();
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn file_lists_split_on_newlines_or_nul() {
        assert_eq!(parse_file_list(b"a.png\r\nb c.png\n\n", false), vec!["a.png", "b c.png"]);
        assert_eq!(parse_file_list(b"a\nb.png\0c.png\0", true), vec!["a\nb.png", "c.png"]);
    }

    #[test]
    fn directories_need_recursion_and_skip_non_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        for f in ["a.png", "sub/b.JPG", ".DS_Store", "Thumbs.db", "sub/notes.txt"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let arg = dir.path().to_string_lossy().to_string();
        let (s, e) = expand_inputs(std::slice::from_ref(&arg), false);
        assert!(s.is_empty() && e[0].contains("use -r"));
        let (s, e) = expand_inputs(&[arg], true);
        assert!(e.is_empty());
        let rel: Vec<_> = s.iter().map(|s| s.relative.clone()).collect();
        assert_eq!(rel, vec![PathBuf::from("a.png"), PathBuf::from("sub/b.JPG")]);
        let pattern = format!("{}/**/*.JPG", dir.path().display());
        assert_eq!(expand_inputs(&[pattern], false).0.len(), 1);
    }
}
