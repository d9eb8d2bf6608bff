//! A real browser for the console's tests: Debian's Chromium driven by
//! `playwright-core` (`npx playwright install` cannot download a browser
//! here). Both are installed on first use if the machine lacks them:
//! Chromium with apt, playwright-core with npm into the build cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Where playwright-core is installed.
pub fn playwright_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        let dir = Path::new(&home).join(".cache/mcp-control-plane/browser");
        if !Path::new(CHROMIUM).exists() {
            let status = Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .expect("apt-get (to install chromium)");
            assert!(status.success(), "apt-get install chromium: {status}");
        }
        if !dir.join("node_modules/playwright-core").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let status = Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    "playwright-core@1",
                ])
                .current_dir(&dir)
                .status()
                .expect("npm (to install playwright-core)");
            assert!(status.success(), "npm install playwright-core: {status}");
        }
        dir.join("node_modules")
    })
}

/// Run the console script's `phase` with `env`: its output, or a panic
/// with it when a check failed.
pub fn run_console_script(phase: &str, env: &[(&str, String)]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/console.mjs");
    let output = Command::new("node")
        .arg(script)
        .env("PLAYWRIGHT_DIR", playwright_dir())
        .env("PHASE", phase)
        .env("SCREENSHOTS", screenshots())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser's checks failed:\n{text}"
    );
    text
}

/// Where the test run saves its screenshots.
pub fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
