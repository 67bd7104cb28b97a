//! A ClickHouse server run by tally itself: for `tally serve` without a configured server, and
//! for tests, which each get a throw-away one.
//!
//! The server is started through a small shell supervisor that holds the read end of a pipe
//! from us: when tally exits for any reason (even SIGKILL) the pipe closes and the supervisor
//! stops the server, so no orphan keeps running or holds the data directory.
//!
//! For the test suite the supervisor can also hand over the SQL tally sent: with
//! `TALLYTEST_SQL_CAPTURE_DIR` set, the server logs its queries and, just before it is stopped,
//! the supervisor writes the distinct statements of tally's own ClickHouse client into that
//! directory (`tests/modern/check_schema.py` then runs them on a current ClickHouse). This has
//! to happen in the supervisor: test binaries keep their server in a `static` that is never
//! dropped, and a killed collector never runs its destructors.

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
    /// `TALLYTEST_SQL_CAPTURE_DIR` is set but there is no `clickhouse-client` to read the
    /// query log with: refused rather than capturing nothing.
    #[error(
        "TALLYTEST_SQL_CAPTURE_DIR is set but no `clickhouse-client` binary was found (`apt-get install -y clickhouse-client`)"
    )]
    NoClient,
    /// A time zone that cannot be written into the server's configuration as it is.
    #[error("invalid time zone name {0:?}")]
    TimeZone(String),
}

/// Environment variable naming a directory that receives the SQL statements tally's client
/// sent to an embedded server (one `queries-PID.jsonl` file per server, written when it stops).
///
/// Not `TALLY_...`: every `TALLY_*` variable is a configuration override, and the collectors the
/// tests start inherit this one.
pub const SQL_CAPTURE_ENV: &str = "TALLYTEST_SQL_CAPTURE_DIR";

/// The file in the data directory naming the running server's HTTP port.
const PORT_FILE: &str = "http_port";

/// How a server is set up beyond its directory and ports. tally runs its own with the
/// defaults; the tests change the rest.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The server's `<timezone>` (an IANA name): `UTC`.
    pub timezone: String,
    /// Log every query in `system.query_log` (as `SQL_CAPTURE_ENV` does): off.
    pub log_queries: bool,
    /// Write table data uncompressed (`<compression>` method `none`), so that what a table
    /// holds can be found in its files byte for byte: off (LZ4).
    pub uncompressed: bool,
    /// The server log's `<level>`: `warning`.
    pub log_level: LogLevel,
    /// XML elements written inside `<yandex>` as they are: empty. The cluster tests put a
    /// node's `remote_servers`, `macros`, `zookeeper` and interserver settings here.
    pub extra_xml: String,
}

/// The levels of the server's own log that tally sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Warnings and errors only.
    Warning,
    /// Everything the server says, each query's text among it.
    Trace,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            timezone: "UTC".into(),
            log_queries: false,
            uncompressed: false,
            log_level: LogLevel::Warning,
            extra_xml: String::new(),
        }
    }
}

/// A running server. Dropping it stops the server (and removes the directory if it was
/// started with `remove_on_exit`).
pub struct EmbeddedClickHouse {
    url: String,
    dir: PathBuf,
    supervisor: Option<Child>,
}

/// Supervisor: starts the server, waits for its stdin to close, then stops the server.
///
/// Arguments: server binary, directory, `remove`/`keep`, capture directory (or empty), client
/// binary, native port, capture query. When capturing, `queries-$$.pending` exists from the
/// start until the dump is complete, so a reader can wait for supervisors still at work; if the
/// dump fails the marker stays and `queries-$$.err` says why. A server that never received a
/// query has no `system.query_log` table: its dump is empty, not an error.
const SUPERVISOR: &str = r#"
"$1" --config-file="$2/config.xml" >>"$2/log/stdout.log" 2>&1 &
pid=$!
echo "$pid" > "$2/server.pid"
if [ -n "$4" ]; then out="$4/queries-$$"; : >"$out.pending"; fi
cat >/dev/null
if [ -n "$4" ]; then
  client="$5" port="$6" capture="$7"
  q() { "$client" --host 127.0.0.1 --port "$port" --query "$1" 2>>"$out.err"; }
  if q "SYSTEM FLUSH LOGS" && logged=$(q "EXISTS TABLE system.query_log") &&
     { [ "$logged" != 1 ] || q "$capture" >"$out.tmp"; }; then
    touch "$out.tmp" && mv "$out.tmp" "$out.jsonl" && rm -f "$out.err" "$out.pending"
  fi
fi
kill -TERM "$pid" 2>/dev/null
wait "$pid"
if [ "$3" = remove ]; then rm -rf "$2"; fi
"#;

/// The statements tally's own client sent, with the errors of those the server rejected (a
/// rejected statement of, say, the pruner is only logged by tally, so no test would see it),
/// and when each was first sent (Unix seconds: the cluster check replays in that order).
/// The `clickhouse` crate names itself `clickhouse-rs/VERSION` in its User-Agent; the test
/// harness (reqwest, no User-Agent) and the browser tests (Node's fetch) do not, so their
/// ad-hoc SQL stays out.
///
/// Public for the cluster tests, whose nodes (killed and restarted on purpose) run a supervisor
/// of their own but capture the same statements.
pub const CAPTURE_QUERY: &str = "SELECT query, groupUniqArrayArray(Settings.Names) AS settings, \
     groupUniqArrayIf(exception, type >= 3) AS errors, toUInt32(min(event_time)) AS first \
     FROM system.query_log \
     WHERE type >= 2 AND position(http_user_agent, 'clickhouse-rs/') > 0 \
     GROUP BY query FORMAT JSONEachRow";

impl EmbeddedClickHouse {
    /// Starts a server with its data in `dir` (created if missing), listening on free loopback
    /// ports, and waits until it answers.
    pub fn start(dir: &Path, remove_on_exit: bool) -> Result<Self, EmbeddedError> {
        Self::start_with_timezone(dir, remove_on_exit, "UTC")
    }

    /// Like [`start`](Self::start), with the server's `<timezone>` set to `timezone` (an IANA
    /// name). tally itself always runs its server in UTC; tests use this to show that what
    /// tally stores does not depend on the time zone of a server it is given.
    pub fn start_with_timezone(
        dir: &Path,
        remove_on_exit: bool,
        timezone: &str,
    ) -> Result<Self, EmbeddedError> {
        Self::start_with(
            dir,
            remove_on_exit,
            &ServerOptions {
                timezone: timezone.to_string(),
                ..ServerOptions::default()
            },
        )
    }

    /// Like [`start`](Self::start), with `options`.
    pub fn start_with(
        dir: &Path,
        remove_on_exit: bool,
        options: &ServerOptions,
    ) -> Result<Self, EmbeddedError> {
        let timezone = options.timezone.as_str();
        // Written into XML as it is: only the characters of IANA names.
        if timezone.is_empty()
            || !timezone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        {
            return Err(EmbeddedError::TimeZone(timezone.to_string()));
        }
        let binary = find_binary("clickhouse-server").ok_or(EmbeddedError::NotInstalled)?;
        let capture = match std::env::var_os(SQL_CAPTURE_ENV).filter(|v| !v.is_empty()) {
            Some(d) => {
                let client = find_binary("clickhouse-client").ok_or(EmbeddedError::NoClient)?;
                std::fs::create_dir_all(&d)?;
                Some((PathBuf::from(d).canonicalize()?, client))
            }
            None => None,
        };
        std::fs::create_dir_all(dir.join("log"))?;
        let dir = dir.canonicalize()?;
        let http_port = free_port()?;
        let tcp_port = free_port()?;
        write_config(&dir, http_port, tcp_port, options, capture.is_some())?;
        let (capture_dir, client) = capture.unwrap_or_default();
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("tally-clickhouse-supervisor")
            .arg(&binary)
            .arg(&dir)
            .arg(if remove_on_exit { "remove" } else { "keep" })
            .arg(&capture_dir)
            .arg(&client)
            .arg(tcp_port.to_string())
            .arg(CAPTURE_QUERY)
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
        // Other tally commands on the same directory (`tally report` while `tally serve` runs)
        // find the running server through this file instead of starting a second one.
        std::fs::write(dir.join(PORT_FILE), http_port.to_string())?;
        Ok(EmbeddedClickHouse {
            url,
            dir,
            supervisor: Some(supervisor),
        })
    }

    /// The URL of a server already running on `dir` (started by another tally process), if
    /// one is: its port file names a port that answers, and the process in its pid file lives.
    pub fn running(dir: &Path) -> Option<String> {
        let port: u16 = std::fs::read_to_string(dir.join(PORT_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let pid: u32 = std::fs::read_to_string(dir.join("server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (Path::new(&format!("/proc/{pid}")).exists() && ping(port))
            .then(|| format!("http://127.0.0.1:{port}"))
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

/// The path of program `name`: on `PATH`, or in `/usr/sbin` or `/usr/bin` (where Debian puts
/// `clickhouse-server`, which a non-root `PATH` may lack).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a ClickHouse server answers `/ping` on `port` of the loopback address, within a
/// second to connect and two to answer.
pub fn ping(port: u16) -> bool {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
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

/// Writes the server's `config.xml` and `users.xml` into `dir` for the given ports. Public for
/// tests that run a server of their own on fixed ports (stopped and started again on the same
/// ports and data); [`EmbeddedClickHouse::start_with`] does the rest for tally.
pub fn write_server_config(
    dir: &Path,
    http_port: u16,
    tcp_port: u16,
    options: &ServerOptions,
) -> std::io::Result<()> {
    write_config(dir, http_port, tcp_port, options, false)
}

fn write_config(
    dir: &Path,
    http_port: u16,
    tcp_port: u16,
    options: &ServerOptions,
    capture: bool,
) -> std::io::Result<()> {
    let d = dir.display();
    let timezone = &options.timezone;
    let extra_xml = &options.extra_xml;
    // Only while capturing (or asked to): the query log grows with every statement.
    let log_queries = if capture || options.log_queries {
        "<log_queries>1</log_queries>"
    } else {
        ""
    };
    let compression = if options.uncompressed {
        "<compression><case><method>none</method></case></compression>"
    } else {
        ""
    };
    let level = match options.log_level {
        LogLevel::Warning => "warning",
        LogLevel::Trace => "trace",
    };
    // Small caches: this is a single-tenant server beside the collector, not a cluster node.
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger>
    <level>{level}</level>
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
  <timezone>{timezone}</timezone>
  {compression}
  <query_log>
    <database>system</database>
    <table>query_log</table>
    <flush_interval_milliseconds>7500</flush_interval_milliseconds>
  </query_log>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  {extra_xml}
</yandex>
"#
    );
    let users = format!(
        r#"<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      {log_queries}
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
"#
    );
    std::fs::write(dir.join("config.xml"), config)?;
    std::fs::write(dir.join("users.xml"), users)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_names_are_checked_before_they_reach_the_config() {
        let dir = std::env::temp_dir().join("tally-embedded-tz-unused");
        for bad in [
            "",
            "UTC</timezone><path>/</path><timezone>UTC",
            "Europe/Berlin\n",
        ] {
            assert!(
                matches!(
                    EmbeddedClickHouse::start_with_timezone(&dir, true, bad),
                    Err(EmbeddedError::TimeZone(_))
                ),
                "{bad:?}"
            );
        }
        assert!(!dir.exists(), "nothing is created for a refused name");
    }
}
