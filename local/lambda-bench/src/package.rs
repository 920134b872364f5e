//! The deployment package: the binary as `bootstrap` in a zip, the layout `sam build`
//! (cargo-lambda) uploads for `provided.al2023`. Written with Python's `zipfile` (deflate,
//! default level, like the `zip` crate cargo-lambda uses) rather than a new Rust dependency.

use std::path::Path;
use std::process::Command;

const ZIP_SCRIPT: &str = r#"
import os, sys, zipfile
binary, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.write(binary, arcname="bootstrap")  # keeps the executable mode bits
print(os.path.getsize(out))
"#;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("could not run {python} to zip {binary}: {source}")]
    Spawn {
        python: String,
        binary: String,
        source: std::io::Error,
    },
    #[error("zipping {binary} failed: {stderr}")]
    Failed { binary: String, stderr: String },
}

/// Zips `binary` as `bootstrap` into `out`; returns the zip's size in bytes.
pub fn zip_bootstrap(python: &Path, binary: &Path, out: &Path) -> Result<u64, PackageError> {
    let output = Command::new(python)
        .args(["-c", ZIP_SCRIPT])
        .arg(binary)
        .arg(out)
        .output()
        .map_err(|source| PackageError::Spawn {
            python: python.display().to_string(),
            binary: binary.display().to_string(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.trim().parse() {
        Ok(size) if output.status.success() => Ok(size),
        _ => Err(PackageError::Failed {
            binary: binary.display().to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }),
    }
}
