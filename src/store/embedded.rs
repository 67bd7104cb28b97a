//! A ClickHouse server run by tally itself: for `tally serve` without a configured server, and
//! for tests, which each get a throw-away one.
//!
//! The server is started through a small shell supervisor that holds the read end of a pipe
//! from us: when tally exits for any reason (even SIGKILL) the pipe closes and the supervisor
//! stops the server, so no orphan keeps running or holds the data directory.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What can go wrong starting the embedded server.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No `clickhouse-server` on `PATH` (or in `/usr/sbin`).
    #[error(
        "no `clickhouse-server` binary found; install it (`apt-get install -y clickhouse-server`) or set [clickhouse] url"
    )]
    NotInstalled,
    /// File system or process error.
    #[error("embedded ClickHouse: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not answer `/ping` in time.
    #[error("embedded ClickHouse did not start within {0:?}; see {1}")]
    Timeout(Duration, PathBuf),
}

/// A running server. Dropping it stops the server (and removes the directory if it was
/// started with `remove_on_exit`).
pub struct EmbeddedClickHouse {
    url: String,
    dir: PathBuf,
    supervisor: Option<Child>,
}

/// Supervisor: starts the server, waits for its stdin to close, then stops the server.
const SUPERVISOR: &str = r#"
"$1" --config-file="$2/config.xml" >>"$2/log/stdout.log" 2>&1 &
pid=$!
echo "$pid" > "$2/server.pid"
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
if [ "$3" = remove ]; then rm -rf "$2"; fi
"#;

impl EmbeddedClickHouse {
    /// Starts a server with its data in `dir` (created if missing), listening on free loopback
    /// ports, and waits until it answers.
    pub fn start(dir: &Path, remove_on_exit: bool) -> Result<Self, EmbeddedError> {
        let binary = find_binary().ok_or(EmbeddedError::NotInstalled)?;
        std::fs::create_dir_all(dir.join("log"))?;
        let dir = dir.canonicalize()?;
        let http_port = free_port()?;
        let tcp_port = free_port()?;
        write_config(&dir, http_port, tcp_port)?;
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("tally-clickhouse-supervisor")
            .arg(&binary)
            .arg(&dir)
            .arg(if remove_on_exit { "remove" } else { "keep" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let url = format!("http://127.0.0.1:{http_port}");
        let timeout = Duration::from_secs(60);
        let started = Instant::now();
        loop {
            if ping(http_port) {
                break;
            }
            if started.elapsed() > timeout || supervisor.try_wait()?.is_some() {
                if let Some(mut stdin) = supervisor.stdin.take() {
                    let _ = stdin.flush();
                }
                let _ = supervisor.wait();
                return Err(EmbeddedError::Timeout(timeout, dir.join("log")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(EmbeddedClickHouse {
            url,
            dir,
            supervisor: Some(supervisor),
        })
    }

    /// HTTP URL of the server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server and waits until it has exited (and flushed its data).
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(mut child) = self.supervisor.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for EmbeddedClickHouse {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("clickhouse-server"))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn ping(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.ends_with("Ok.\n")
}

fn write_config(dir: &Path, http_port: u16, tcp_port: u16) -> std::io::Result<()> {
    let d = dir.display();
    // Small caches: this is a single-tenant server beside the collector, not a cluster node.
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>{d}/log/server.log</log>
    <errorlog>{d}/log/server.err.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/db/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
"#
    );
    let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
"#;
    std::fs::write(dir.join("config.xml"), config)?;
    std::fs::write(dir.join("users.xml"), users)?;
    Ok(())
}
