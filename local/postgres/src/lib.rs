//! A throwaway PostgreSQL server for tests and local drills: `initdb` into a temporary
//! directory, `postgres` on a free loopback port with password (SCRAM) authentication, and
//! everything removed when dropped. Uses Debian's packaged server
//! (`/usr/lib/postgresql/<version>/bin`, or `ROLLBACK_PG_BIN`).
//!
//! PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user
//! (created by the Debian package) and the data directory is handed to it.
//!
//! [`PostgresServer::start_tls`] serves TLS only (`ssl=on`, plaintext connections refused)
//! with a certificate for the names it is given, signed by a CA generated for the server
//! ([`PostgresServer::ca_pem`]): clients verify it as they verify RDS (`verify-full`), and a
//! test can give a deliberately wrong name.
//!
//! Tests: `cargo test -p rollback-postgres` (needs Debian's `postgresql` package:
//! `make system-deps` installs it).

use std::ffi::CString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error(
        "PostgreSQL server binaries not found (looked for {0}); install Debian's `postgresql` \
         package (`make system-deps`) or set ROLLBACK_PG_BIN to a directory with initdb and postgres"
    )]
    NotInstalled(String),
    #[error(
        "running as root and there is no `postgres` user to run the server as; install \
         Debian's `postgresql` package, which creates it"
    )]
    NoServiceUser,
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("initdb failed ({status}); its output:\n{output}")]
    Initdb { status: String, output: String },
    #[error("psql failed ({status}): {output}")]
    Psql { status: String, output: String },
    #[error("generating the TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("postgres did not accept connections on {addr} within {secs} s; its log:\n{log}")]
    NotReady {
        addr: SocketAddr,
        secs: u64,
        log: String,
    },
}

/// Runs a blocking start on tokio's blocking pool; a panic in it resumes in the caller.
async fn off_the_runtime(
    start: impl FnOnce() -> Result<PostgresServer, PostgresError> + Send + 'static,
) -> Result<PostgresServer, PostgresError> {
    match tokio::task::spawn_blocking(start).await {
        Ok(started) => started,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(PostgresError::Io {
            step: "starting postgres on the blocking pool",
            source: std::io::Error::other(join),
        }),
    }
}

fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> PostgresError {
    move |source| PostgresError::Io { step, source }
}

/// The names a TLS server's certificate gives when a test wants the right ones: what
/// [`PostgresServer::host`] and `localhost` connect to.
pub const LOOPBACK_NAMES: &[&str] = &["127.0.0.1", "localhost"];

/// A running server. The superuser is `postgres` with a random password; one database,
/// `postgres`, exists.
pub struct PostgresServer {
    keeper: Option<Keeper>,
    addr: SocketAddr,
    password: String,
    dir: tempfile::TempDir,
    /// The CA that signed the server's certificate (PEM), when it serves TLS.
    ca_pem: Option<String>,
}

/// A CA and a server certificate signed by it, in PEM.
struct TlsFiles {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn generate_tls(names: &[&str]) -> Result<TlsFiles, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rollback local PostgreSQL CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    // An IP address becomes an IP SAN, anything else a DNS name.
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("postgres"),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert_pem = params.signed_by(&key, &issuer)?.pem();
    Ok(TlsFiles {
        ca_pem,
        cert_pem,
        key_pem: key.serialize_pem(),
    })
}

impl PostgresServer {
    /// The directory with `initdb` and `postgres`: `ROLLBACK_PG_BIN`, else the newest
    /// `/usr/lib/postgresql/<version>/bin`.
    pub fn bin_dir() -> Result<PathBuf, PostgresError> {
        if let Some(dir) = std::env::var_os("ROLLBACK_PG_BIN") {
            let dir = PathBuf::from(dir);
            return if dir.join("initdb").exists() {
                Ok(dir)
            } else {
                Err(PostgresError::NotInstalled(dir.display().to_string()))
            };
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, bin)| bin)
            .ok_or_else(|| PostgresError::NotInstalled("/usr/lib/postgresql/*/bin/initdb".into()))
    }

    /// Initialises a cluster in a fresh temporary directory and starts it on a free port,
    /// without TLS (a client must say `sslmode=disable`).
    pub fn start() -> Result<PostgresServer, PostgresError> {
        Self::start_with(None)
    }

    /// Like [`PostgresServer::start`], serving TLS only, with a certificate for `names` (DNS
    /// names or IP addresses; [`LOOPBACK_NAMES`] are the right ones) signed by a fresh CA.
    pub fn start_tls(names: &[&str]) -> Result<PostgresServer, PostgresError> {
        Self::start_with(Some(names))
    }

    /// [`PostgresServer::start`] from async code: `initdb` and the start block for seconds,
    /// so they run on tokio's blocking pool instead of a runtime worker.
    pub async fn start_async() -> Result<PostgresServer, PostgresError> {
        off_the_runtime(|| Self::start_with(None)).await
    }

    /// [`PostgresServer::start_tls`] from async code, on tokio's blocking pool.
    pub async fn start_tls_async(
        names: &'static [&'static str],
    ) -> Result<PostgresServer, PostgresError> {
        off_the_runtime(move || Self::start_with(Some(names))).await
    }

    /// A fresh cluster in a temporary directory (handed to the service user under root), its
    /// TLS files when `tls_names` are given, then the server on a free port, waited for.
    fn start_with(tls_names: Option<&[&str]>) -> Result<PostgresServer, PostgresError> {
        let bin = Self::bin_dir()?;
        let owner = service_user()?;
        let dir = tempfile::Builder::new()
            .prefix("rollback-pg-")
            .tempdir()
            .map_err(io("creating the temporary directory"))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(io("creating the data directory"))?;
        let password = random_password();
        init_cluster(&bin, dir.path(), &data, &password, owner)?;

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port"))?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let tls = tls_names.map(generate_tls).transpose()?;
        if let Some(tls) = &tls {
            write_tls_files(dir.path(), &data, tls, owner)?;
        }
        let log_path = dir.path().join("postgres.log");
        let log = std::fs::File::create(&log_path).map_err(io("creating the log"))?;
        if let Some((uid, gid)) = owner {
            chown(&log_path, uid, gid).map_err(io("handing the log to postgres"))?;
        }
        let mut command = Command::new(bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            // No Unix socket: nothing outside the test should find this server.
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off", "-c", "max_connections=20"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("opening the log"))?)
            .stderr(log);
        if tls.is_some() {
            command.args(["-c", "ssl=on"]);
            command.arg("-c").arg(format!(
                "ssl_cert_file={}",
                dir.path().join("server.crt").display()
            ));
            command.arg("-c").arg(format!(
                "ssl_key_file={}",
                dir.path().join("server.key").display()
            ));
        }
        as_user(&mut command, owner);
        // SAFETY: prctl is async-signal-safe; the kernel signals the server when the test
        // process dies, so no server outlives its tests.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        let keeper = Keeper::spawn(command)?;
        let mut server = PostgresServer {
            keeper: Some(keeper),
            addr,
            password,
            dir,
            ca_pem: tls.map(|t| t.ca_pem),
        };
        server.wait_ready(&bin)?;
        Ok(server)
    }

    fn wait_ready(&mut self, bin: &Path) -> Result<(), PostgresError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let isready = bin.join("pg_isready");
        while Instant::now() < deadline {
            if self.keeper.as_ref().is_some_and(|k| k.exited()) {
                break;
            }
            let up = if isready.exists() {
                Command::new(&isready)
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &self.addr.port().to_string(),
                        "-t",
                        "2",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            } else {
                TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)).is_ok()
            };
            if up {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(PostgresError::NotReady {
            addr: self.addr,
            secs: START_TIMEOUT.as_secs(),
            log: std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn user(&self) -> &str {
        "postgres"
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn dbname(&self) -> &str {
        "postgres"
    }

    /// The PEM of the CA that signed the server's certificate; `None` without TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A libpq-style connection string (`host=… port=… user=… password=… dbname=…`), for a
    /// server without TLS.
    pub fn connection_string(&self) -> String {
        format!(
            "host={} port={} user={} password={} dbname={}",
            self.host(),
            self.port(),
            self.user(),
            self.password,
            self.dbname()
        )
    }

    /// The credentials as an RDS-style Secrets Manager secret
    /// (`{username, password, host, port, dbname, engine}`): with TLS, the CA as
    /// `sslrootcert` (verified as `verify-full`); without, `"sslmode": "disable"`, said
    /// explicitly as a real secret must.
    pub fn rds_secret(&self) -> serde_json::Value {
        let mut secret = serde_json::json!({
            "username": self.user(),
            "password": self.password,
            "host": self.host(),
            "port": self.port(),
            "dbname": self.dbname(),
            "engine": "postgres",
        });
        match &self.ca_pem {
            Some(ca) => secret["sslrootcert"] = ca.clone().into(),
            None => secret["sslmode"] = "disable".into(),
        }
        secret
    }

    /// Runs `sql` with `psql` as the superuser (over TLS when the server serves it; the
    /// certificate is not checked, the server is ours) and returns its output, for seeding.
    pub fn psql(&self, sql: &str) -> Result<String, PostgresError> {
        let bin = Self::bin_dir()?;
        let sslmode = if self.ca_pem.is_some() {
            "require"
        } else {
            "disable"
        };
        let out = Command::new(bin.join("psql"))
            .args(["-h", &self.host(), "-p", &self.port().to_string()])
            .args(["-U", self.user(), "-d", self.dbname()])
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .env("PGPASSWORD", &self.password)
            .env("PGSSLMODE", sslmode)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(io("running psql"))?;
        if !out.status.success() {
            return Err(PostgresError::Psql {
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.stop();
        }
    }
}

/// Owns the server process from a dedicated thread. The kernel sends PR_SET_PDEATHSIG when
/// the *thread* that spawned the child exits, so the spawning thread must live as long as the
/// server (a test's or a blocking pool's thread may end first); it also stops the server.
struct Keeper {
    stop: mpsc::Sender<()>,
    exited: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Keeper {
    fn spawn(mut command: Command) -> Result<Keeper, PostgresError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (started, start_result) = mpsc::channel::<std::io::Result<()>>();
        let exited = Arc::new(AtomicBool::new(false));
        let flag = exited.clone();
        let thread = std::thread::Builder::new()
            .name("postgres-keeper".into())
            .spawn(move || {
                let mut child = match command.spawn() {
                    Ok(child) => {
                        let _ = started.send(Ok(()));
                        child
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                // Until asked to stop (or the owner is gone).
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(100))
                {
                    if let Ok(Some(_)) = child.try_wait() {
                        flag.store(true, Ordering::SeqCst);
                    }
                }
                shut_down(&mut child);
                flag.store(true, Ordering::SeqCst);
            })
            .map_err(io("starting the keeper thread"))?;
        match start_result.recv() {
            Ok(Ok(())) => Ok(Keeper {
                stop,
                exited,
                thread,
            }),
            Ok(Err(e)) => Err(PostgresError::Io {
                step: "starting postgres",
                source: e,
            }),
            Err(_) => Err(PostgresError::Io {
                step: "starting postgres",
                source: std::io::Error::other("the keeper thread ended"),
            }),
        }
    }

    fn exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn shut_down(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, no waiting.
    // SAFETY: the pid is our own child's, not yet reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `initdb` into `data` with the superuser `postgres` and `password` (SCRAM), as the service
/// user when there is one; the password file is removed again.
fn init_cluster(
    bin: &Path,
    dir: &Path,
    data: &Path,
    password: &str,
    owner: Option<(u32, u32)>,
) -> Result<(), PostgresError> {
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, password).map_err(io("writing the password file"))?;
    if let Some((uid, gid)) = owner {
        for path in [dir, data, &pwfile] {
            chown(path, uid, gid).map_err(io("handing the directory to postgres"))?;
        }
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(data)
        .args([
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdin(Stdio::null());
    as_user(&mut initdb, owner);
    let out = initdb.output().map_err(io("running initdb"))?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        return Err(PostgresError::Initdb {
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(())
}

/// The server's certificate and key in `dir` (the key the server user's and private, 0600, or
/// postgres refuses it), and a `pg_hba.conf` that refuses plaintext connections.
fn write_tls_files(
    dir: &Path,
    data: &Path,
    tls: &TlsFiles,
    owner: Option<(u32, u32)>,
) -> Result<(), PostgresError> {
    for (name, text, mode) in [
        ("server.crt", &tls.cert_pem, 0o644),
        ("server.key", &tls.key_pem, 0o600),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io("writing the TLS files"))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io("writing the TLS files"))?;
        if let Some((uid, gid)) = owner {
            chown(&path, uid, gid).map_err(io("handing the TLS files to postgres"))?;
        }
    }
    // Plaintext connections refused: `hostssl` only.
    let hba = data.join("pg_hba.conf");
    std::fs::write(
        &hba,
        "hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n",
    )
    .map_err(io("writing pg_hba.conf"))?;
    if let Some((uid, gid)) = owner {
        chown(&hba, uid, gid).map_err(io("handing pg_hba.conf to postgres"))?;
    }
    Ok(())
}

/// `Some((uid, gid))` of the `postgres` user when running as root; `None` otherwise.
fn service_user() -> Result<Option<(u32, u32)>, PostgresError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer into static storage or null; read it at once.
    // Tests may call this from several threads; the worst case is a racy re-read of the
    // same user's entry.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(PostgresError::NoServiceUser);
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

fn as_user(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        // std drops root's supplementary groups when it changes the uid.
        command.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// 24 hex digits from the kernel's random source (no quoting issues in connection strings).
fn random_password() -> String {
    let mut bytes = [0u8; 12];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
