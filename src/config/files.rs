//! Reading the files a catalog names (the catalog itself, its policy and
//! data files, the lock of pinned definitions) so that whoever can write the
//! catalog cannot read other files through it:
//!
//! - a symbolic link never carries a read out of the catalog's directory
//!   (a ConfigMap's `..data` links stay inside it), unless the operator
//!   passes `--follow-symlinks`;
//! - an error about a file names the file, line, column and problem, never
//!   what the file holds: parsers echo the values they reject (a private
//!   key's lines, `/etc/shadow`), and [`scrub`] takes them out.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether symbolic links may lead out of the catalog's directory: the
/// operator's choice for the process (`--follow-symlinks`), never the
/// catalog's, which is what it guards against.
static FOLLOW_SYMLINKS: AtomicBool = AtomicBool::new(false);

/// Let symbolic links lead out of the catalog's directory.
pub fn follow_symlinks(allow: bool) {
    FOLLOW_SYMLINKS.store(allow, Ordering::Relaxed);
}

/// Read `path` as text. A path inside `dir` (as written; empty for the
/// working directory) must also be inside it once every symbolic link is
/// resolved; a path the catalog names outside its directory is read as
/// named.
pub fn read_within(path: &Path, dir: &Path) -> io::Result<String> {
    check_within(path, dir)?;
    std::fs::read_to_string(path)
}

/// Refuse `path` if it is inside `dir` as written but a symbolic link
/// takes it outside.
fn check_within(path: &Path, dir: &Path) -> io::Result<()> {
    if FOLLOW_SYMLINKS.load(Ordering::Relaxed) {
        return Ok(());
    }
    let dir = match dir.as_os_str().is_empty() {
        true => std::env::current_dir()?,
        false => std::path::absolute(dir)?,
    };
    let written = normal(&std::path::absolute(path)?);
    if !written.starts_with(normal(&dir)) {
        return Ok(());
    }
    let real_dir = dir.canonicalize()?;
    match path.canonicalize() {
        Ok(real) if !real.starts_with(&real_dir) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a symbolic link leads out of the catalog's directory \
             (pass --follow-symlinks to allow it)",
        )),
        // A missing file is reported by the read.
        _ => Ok(()),
    }
}

/// `path` with `.` and `..` taken out as written (no link is followed).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A parser's message without what the parsed text held: every
/// double-quoted value becomes `"…"`, a back-quoted one too unless it is a
/// short plain word (a field name such as `timeout`, which helps find a
/// typo), and source excerpts (`12 | text`) are dropped.
pub fn scrub(message: &str) -> String {
    let kept: Vec<&str> = (message.lines())
        .filter(|line| !is_excerpt(line))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let message = kept.join(" ");
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(start) = rest.find(['"', '`']) {
        let quote = &rest[start..start + 1];
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = closing(after, quote) else {
            // Unterminated: everything after it may be the value.
            out.push_str(quote);
            out.push('…');
            return out;
        };
        let inner = &after[..end];
        out.push_str(quote);
        out.push_str(if quote == "`" && is_word(inner) {
            inner
        } else {
            "…"
        });
        out.push_str(quote);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A line of a source excerpt as regorus (and rustc-style reports) draw
/// it: `  |`, `12 | text`, `  | ^^^`.
fn is_excerpt(line: &str) -> bool {
    let trimmed = line.trim_start();
    let digits = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
    digits.trim_start().starts_with('|')
}

/// Where the quote that closes a value starting at `text` is (a
/// backslash escapes the next character).
fn closing(text: &str, quote: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if quote.starts_with(c) => return Some(i),
            _ => {}
        }
    }
    None
}

fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 40
        && (text.chars()).all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsers_message_keeps_the_problem_and_loses_the_content() {
        let serde = "invalid type: string \"-----BEGIN PRIVATE KEY----- MC4C\\\"AQ\", expected struct CatalogFile";
        assert_eq!(
            scrub(serde),
            "invalid type: string \"…\", expected struct CatalogFile"
        );
        let field = "unknown field `tiemout`, expected one of `timeout`, `stdio`";
        assert_eq!(scrub(field), field);
        let variant = "unknown variant `root:$y$j9T$abc:19000:0:99999:7:::`, expected `jwt`";
        assert_eq!(scrub(variant), "unknown variant `…`, expected `jwt`");
        let rego = "\n--> policies/x.rego:1:1\n  |\n1 | -----BEGIN PRIVATE KEY-----\n  | ^\nerror: expecting `package` Missing package declaration.";
        let scrubbed = scrub(rego);
        assert_eq!(
            scrubbed,
            "--> policies/x.rego:1:1 error: expecting `package` Missing package declaration."
        );
        assert_eq!(scrub("bad \"unterminated secret"), "bad \"…");
    }

    #[test]
    fn a_link_out_of_the_catalogs_directory_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.pem");
        std::fs::write(&secret, "KEY").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("catalog.yaml");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let refused = read_within(&link, dir.path()).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(!refused.to_string().contains("KEY"));
        // A link that stays inside (a ConfigMap's `..data`) is followed.
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("..data/policy.rego"), "package x").unwrap();
        let inside = dir.path().join("policy.rego");
        std::os::unix::fs::symlink("..data/policy.rego", &inside).unwrap();
        assert_eq!(read_within(&inside, dir.path()).unwrap(), "package x");
        // A file named outside the directory is read as named.
        assert_eq!(read_within(&secret, dir.path()).unwrap(), "KEY");
    }
}
