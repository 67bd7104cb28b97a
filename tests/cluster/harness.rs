//! A real ClickHouse cluster on loopback for the cluster tests: ZooKeeper (Debian's `zookeeper`
//! package, its server class run with `java`) and three ClickHouse 18.16 servers, arranged as the
//! cluster `tally` of `/work/briefs/cluster-contract.md`:
//!
//! | node | shard (`{shard}`) | replica (`{replica}`) |
//! |------|-------------------|-----------------------|
//! | 0    | 1 (`01`)          | `ch1`                 |
//! | 1    | 1 (`01`)          | `ch2`                 |
//! | 2    | 2 (`02`)          | `ch3`                 |
//!
//! Every process has its data in a temporary directory of its own and runs under a small shell
//! supervisor that holds the read end of a pipe from the test (the pattern of
//! `tests/common/faults.rs`): when the test ends, panics or is killed, the pipe closes and the
//! supervisor stops its server, so nothing outlives the test.
//!
//! Ports are taken below the kernel's ephemeral range ([`stable_port`]): a node killed and
//! started again comes back on the same ports, which no other test's `bind(0)` can have taken
//! meanwhile, and the other nodes' `remote_servers` stay right.
//!
//! With `TALLYTEST_SQL_CAPTURE_DIR` set, each node's supervisor writes the statements tally's
//! client (the `clickhouse` crate) sent to it into `cluster-<replica>-<pid>.jsonl` there, with
//! the same query as every other test server (`CAPTURE_QUERY` of `src/store/embedded.rs`). The
//! `cluster-` prefix tells `tests/modern/check_schema.py` that these statements carry
//! `ON CLUSTER` and `Replicated*` engines, which it checks differently.

// The self-test does not use every accessor; the tally scenario tests do.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tally::store::embedded::{self, CAPTURE_QUERY, SQL_CAPTURE_ENV, ServerOptions, find_binary};

use crate::common::faults::{alive, rss_bytes};
use crate::common::ports::stable_port;

/// The `remote_servers` name of the cluster (tally's `[clickhouse] cluster`).
pub const CLUSTER: &str = "tally";

/// Shard (1-based, as `system.clusters.shard_num`) and replica name of each node, in order.
const LAYOUT: [(u32, &str); 3] = [(1, "ch1"), (1, "ch2"), (2, "ch3")];

/// The ZooKeeper session of every node, in milliseconds. A node killed with SIGKILL leaves its
/// session (and its replicas' `is_active` nodes) behind until this runs out; only then does it
/// become active again after a restart, so short, but long enough that a busy two-core machine
/// does not lose sessions of live nodes (heartbeats go every third of it).
const ZK_SESSION_MS: u32 = 6000;

/// How long a node or ZooKeeper may take to answer after its start.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long any one query may take (an `ON CLUSTER` statement waits for every node).
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// The cluster: ZooKeeper and three ClickHouse nodes. Dropping it stops everything (nodes
/// first, so their SQL capture can run, then ZooKeeper) and removes the directory.
pub struct Cluster {
    /// The nodes, in the order of [`LAYOUT`] (node 0 is the usual entry node).
    pub nodes: Vec<Node>,
    /// The ZooKeeper server.
    pub zookeeper: ZooKeeper,
    /// How long [`Cluster::start`] took.
    pub started_in: Duration,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts ZooKeeper, then the three nodes (together), and returns once every node answers `/ping`,
    /// reaches ZooKeeper (`system.zookeeper` answers) and sees the whole cluster in
    /// `system.clusters` (2 shards, 3 replicas). Panics with the logs if that takes too long.
    pub async fn start() -> Cluster {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("tally-cluster-")
            .tempdir()
            .expect("temp dir");
        let capture = capture_target();
        let server = find_binary("clickhouse-server").expect("clickhouse-server is installed");

        let zk_port = stable_port();
        let mut nodes: Vec<Node> = LAYOUT
            .iter()
            .enumerate()
            .map(|(i, &(shard, replica))| Node {
                index: i,
                http_port: stable_port(),
                tcp_port: stable_port(),
                interserver_port: stable_port(),
                shard,
                replica,
                dir: dir.path().join(format!("node{i}")),
                server: server.clone(),
                capture: capture.clone(),
                supervisor: None,
                pid: 0,
            })
            .collect();
        let remote_servers = remote_servers(&nodes);
        for node in &nodes {
            node.write_config(&remote_servers, zk_port);
        }

        // ZooKeeper first: an 18.16 node that starts while ZooKeeper does not answer yet
        // reconnects for its tables later, but its distributed DDL worker keeps no session and
        // the server crashes (SIGSEGV in `zkutil::ZooKeeper::createImpl`) at the first
        // `ON CLUSTER` statement. The nodes then start together.
        let mut zookeeper = ZooKeeper::spawn(&dir.path().join("zookeeper"), zk_port);
        zookeeper.wait_ready();
        for node in &mut nodes {
            node.spawn();
        }
        for node in &mut nodes {
            node.wait_ready();
        }
        let mut cluster = Cluster {
            nodes,
            zookeeper,
            started_in: Duration::ZERO,
            dir,
        };
        for node in &cluster.nodes {
            node.wait_until(
                "reaches ZooKeeper",
                "SELECT count() > 0 FROM system.zookeeper WHERE path = '/'",
                "1",
            )
            .await;
            node.wait_until(
                "sees the cluster",
                &format!(
                    "SELECT uniqExact(shard_num), count() FROM system.clusters \
                     WHERE cluster = '{CLUSTER}'"
                ),
                "2\t3",
            )
            .await;
        }
        cluster.started_in = started.elapsed();
        cluster
    }

    /// The `[clickhouse]` section of tally's configuration for this cluster, with node `entry`
    /// as the entry node and `database` as the database (as in the contract).
    pub fn tally_clickhouse_toml(&self, entry: usize, database: &str) -> String {
        let mut shards: Vec<Vec<String>> = Vec::new();
        for node in &self.nodes {
            let i = node.shard as usize - 1;
            if shards.len() <= i {
                shards.resize(i + 1, Vec::new());
            }
            shards[i].push(format!("\"{}\"", node.url()));
        }
        let shards = shards
            .iter()
            .map(|s| format!("[{}]", s.join(", ")))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "[clickhouse]\nurl = \"{}\"\ndatabase = \"{database}\"\ncluster = \"{CLUSTER}\"\n\
             shards = [{shards}]\n",
            self.nodes[entry].url()
        )
    }

    /// Resident memory of ZooKeeper and of the nodes that run, in bytes: `(zookeeper, nodes)`.
    pub fn rss_bytes(&self) -> (u64, u64) {
        let zk = rss_bytes(self.zookeeper.pid).unwrap_or(0);
        let nodes = self
            .nodes
            .iter()
            .filter(|n| n.running())
            .filter_map(|n| rss_bytes(n.pid))
            .sum();
        (zk, nodes)
    }

    /// The directory everything lives in (a `node<i>/` per node, `zookeeper/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // All nodes at once (each dumps its query log and shuts down), ZooKeeper last: a node
        // shutting down still talks to it.
        for node in &mut self.nodes {
            node.begin_stop();
        }
        for node in &mut self.nodes {
            node.finish_stop();
        }
        self.zookeeper.stop();
    }
}

/// The `remote_servers` entry of the cluster, the same on every node.
fn remote_servers(nodes: &[Node]) -> String {
    let mut xml = format!("<remote_servers><{CLUSTER}>");
    let mut shard = 0;
    for node in nodes {
        if node.shard != shard {
            if shard != 0 {
                xml.push_str("</shard>");
            }
            shard = node.shard;
            // The replicated tables copy rows between replicas themselves: a Distributed
            // insert writes one replica per shard.
            xml.push_str("<shard><internal_replication>true</internal_replication>");
        }
        xml.push_str(&format!(
            "<replica><host>127.0.0.1</host><port>{}</port></replica>",
            node.tcp_port
        ));
    }
    xml.push_str(&format!("</shard></{CLUSTER}></remote_servers>"));
    xml
}

/// Where (and with which client) the nodes' supervisors write the captured SQL, when asked to.
fn capture_target() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os(SQL_CAPTURE_ENV).filter(|v| !v.is_empty())?;
    let client = find_binary("clickhouse-client")
        .expect("TALLYTEST_SQL_CAPTURE_DIR is set: clickhouse-client is needed to capture");
    std::fs::create_dir_all(&dir).expect("create the SQL capture directory");
    Some((
        PathBuf::from(dir)
            .canonicalize()
            .expect("capture directory"),
        client,
    ))
}

/// Waits until `pid_file` names a process (written by a supervisor right after it started it).
fn read_pid(pid_file: &Path, supervisor: &mut Child) -> u32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10)
                && supervisor.try_wait().ok().flatten().is_none(),
            "supervisor wrote no pid to {}",
            pid_file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Closes the supervisor's pipe (it then stops its server) and waits for it; kills `pid` if the
/// supervisor has not finished after `patience`.
fn stop_supervisor(mut supervisor: Child, pid: u32, patience: Duration) {
    drop(supervisor.stdin.take());
    let started = Instant::now();
    let mut killed = false;
    while supervisor.try_wait().ok().flatten().is_none() {
        if started.elapsed() > patience && !killed {
            // Never leave a server behind, even one that ignores SIGTERM.
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Node supervisor. Arguments: server binary, node directory, capture directory (or empty),
/// client binary, native port, capture query, capture file name.
///
/// It starts the server, writes its pid, then reads one line from the test:
/// - `kill`: dump the query log (if capturing), then SIGKILL the server: a crash. The dump
///   comes first because a crashed server's unflushed log is gone, and a node the test kills
///   for good would otherwise leave nothing; the flush only writes `system.query_log`.
/// - end of input (the test stopping the cluster, or the test process gone): dump the query
///   log (if capturing), SIGTERM the server, wait, and remove its directory.
///
/// While capturing, `<file>.pending` exists until the dump is complete (a reader waits for
/// it); if the dump fails the marker stays and `<file>.err` says why, which fails the check.
const NODE_SUPERVISOR: &str = r#"
server="$1" dir="$2" capture_dir="$3" client="$4" port="$5" capture="$6" name="$7"
"$server" --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1 &
pid=$!
echo "$pid" > "$dir/server.pid.tmp" && mv "$dir/server.pid.tmp" "$dir/server.pid"
if [ -n "$capture_dir" ]; then out="$capture_dir/$name-$$"; : >"$out.pending"; fi
q() { timeout 60 "$client" --host 127.0.0.1 --port "$port" --query "$1" 2>>"$out.err"; }
dump() {
  [ -n "$capture_dir" ] || return 0
  if q "SYSTEM FLUSH LOGS" && logged=$(q "EXISTS TABLE system.query_log") &&
     { [ "$logged" != 1 ] || q "$capture" >"$out.tmp"; }; then
    touch "$out.tmp" && mv "$out.tmp" "$out.jsonl" && rm -f "$out.err" "$out.pending"
  fi
}
order=""
read -r order || true
dump
if [ "$order" = kill ]; then
  kill -KILL "$pid" 2>/dev/null
  wait "$pid"
  exit 0
fi
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"#;

/// One ClickHouse server of the cluster.
pub struct Node {
    /// Position in [`Cluster::nodes`].
    pub index: usize,
    /// HTTP port (the same across restarts).
    pub http_port: u16,
    /// Native port (the one in `remote_servers`).
    pub tcp_port: u16,
    /// `interserver_http_port`: replicas fetch parts from each other here.
    pub interserver_port: u16,
    /// Shard number, 1-based (`system.clusters.shard_num`).
    pub shard: u32,
    /// The `{replica}` macro, unique in the cluster.
    pub replica: &'static str,
    dir: PathBuf,
    server: PathBuf,
    capture: Option<(PathBuf, PathBuf)>,
    supervisor: Option<Child>,
    pid: u32,
}

impl Node {
    /// `http://127.0.0.1:PORT`, the same across restarts.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The `{shard}` macro: `01`, `02`.
    pub fn shard_macro(&self) -> String {
        format!("{:02}", self.shard)
    }

    /// Whether the server runs (started, not killed).
    pub fn running(&self) -> bool {
        self.supervisor.is_some()
    }

    /// The server process (meaningful while it runs).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs `sql` over HTTP and returns its TSV result without the last newline; `Err` with the
    /// server's message (or the transport error). Not captured for the chdb check (no
    /// `clickhouse-rs` User-Agent): for the test's own looking around.
    pub async fn query(&self, sql: &str) -> Result<String, String> {
        crate::common::try_query_on(&self.url(), sql, QUERY_TIMEOUT).await
    }

    /// A `clickhouse` crate client for this node, as tally sets it up for 18.16 (no schema
    /// validation). Statements sent through it are what the SQL capture keeps.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(self.url())
            .with_validation(false)
    }

    /// Kills the server with SIGKILL (a crash: no shutdown, no flush of table data) and
    /// returns once the process is gone. [`Node::start`] brings it back.
    pub fn kill(&mut self) {
        let mut sup = self.supervisor.take().expect("the node runs");
        if let Some(mut stdin) = sup.stdin.take() {
            let _ = stdin.write_all(b"kill\n");
        }
        stop_supervisor(sup, self.pid, Duration::from_secs(90));
        assert!(!alive(self.pid), "node {} still runs", self.index);
    }

    /// Starts the server again on the same ports and data; returns once it answers `/ping`.
    pub fn start(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    fn write_config(&self, remote_servers: &str, zk_port: u16) {
        std::fs::create_dir_all(self.dir.join("log")).expect("node directory");
        let extra_xml = format!(
            "{remote_servers}\n  \
             <zookeeper><node index=\"1\"><host>127.0.0.1</host><port>{zk_port}</port></node>\
             <session_timeout_ms>{ZK_SESSION_MS}</session_timeout_ms></zookeeper>\n  \
             <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\n  \
             <macros><shard>{shard}</shard><replica>{replica}</replica></macros>\n  \
             <interserver_http_port>{port}</interserver_http_port>\n  \
             <interserver_http_host>127.0.0.1</interserver_http_host>",
            shard = self.shard_macro(),
            replica = self.replica,
            port = self.interserver_port,
        );
        let options = ServerOptions {
            // As the other test servers do while capturing; also lets a test look at what
            // the node did.
            log_queries: true,
            extra_xml,
            ..ServerOptions::default()
        };
        embedded::write_server_config(&self.dir, self.http_port, self.tcp_port, &options)
            .expect("write the node's config");
    }

    fn spawn(&mut self) {
        assert!(
            self.supervisor.is_none(),
            "node {} already runs",
            self.index
        );
        let pid_file = self.dir.join("server.pid");
        let _ = std::fs::remove_file(&pid_file);
        let (capture_dir, client) = self.capture.clone().unwrap_or_default();
        let mut sup = Command::new("sh")
            .arg("-c")
            .arg(NODE_SUPERVISOR)
            .arg("tally-cluster-node")
            .arg(&self.server)
            .arg(&self.dir)
            .arg(&capture_dir)
            .arg(&client)
            .arg(self.tcp_port.to_string())
            .arg(CAPTURE_QUERY)
            .arg(format!("cluster-{}", self.replica))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        self.pid = read_pid(&pid_file, &mut sup);
        self.supervisor = Some(sup);
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while !embedded::ping(self.http_port) {
            let exited = self
                .supervisor
                .as_mut()
                .is_none_or(|s| s.try_wait().ok().flatten().is_some());
            if started.elapsed() > START_TIMEOUT || exited {
                let log = std::fs::read_to_string(self.dir.join("log/server.err.log"))
                    .unwrap_or_default();
                self.begin_stop();
                self.finish_stop();
                panic!("node {} did not start:\n{log}", self.index);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `sql` until it answers `want` (trimmed), for up to [`START_TIMEOUT`].
    async fn wait_until(&self, what: &str, sql: &str, want: &str) {
        let started = Instant::now();
        loop {
            let got = self.query(sql).await;
            if got.as_deref().map(str::trim) == Ok(want) {
                return;
            }
            if started.elapsed() > START_TIMEOUT || !alive(self.pid) {
                panic!(
                    "node {} never {what}: {sql} -> {got:?}\n{}",
                    self.index,
                    self.error_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The server's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/server.err.log")).unwrap_or_default()
    }

    fn begin_stop(&mut self) {
        if let Some(sup) = self.supervisor.as_mut() {
            drop(sup.stdin.take());
        }
    }

    fn finish_stop(&mut self) {
        if let Some(sup) = self.supervisor.take() {
            stop_supervisor(sup, self.pid, Duration::from_secs(90));
        }
    }
}

/// ZooKeeper supervisor. Arguments: java, its directory, class path. Stops the server when its
/// stdin closes, then removes the directory.
const ZK_SUPERVISOR: &str = r#"
"$1" -Xmx256m -XX:+UseSerialGC -cp "$3" \
  org.apache.zookeeper.server.ZooKeeperServerMain "$2/zoo.cfg" >>"$2/zookeeper.log" 2>&1 &
pid=$!
echo "$pid" > "$2/server.pid.tmp" && mv "$2/server.pid.tmp" "$2/server.pid"
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rm -rf "$2"
"#;

/// The server jar of Debian's `zookeeper` package; its manifest names the jars it needs.
const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A standalone ZooKeeper server of the test's own.
pub struct ZooKeeper {
    /// Its client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    supervisor: Option<Child>,
    pid: u32,
}

impl ZooKeeper {
    fn spawn(dir: &Path, port: u16) -> ZooKeeper {
        assert!(
            Path::new(ZK_JAR).is_file(),
            "{ZK_JAR} missing: install ZooKeeper (deploy/install-deps.sh --test)"
        );
        let java = find_binary("java").expect("java is installed (ZooKeeper's dependency)");
        std::fs::create_dir_all(dir.join("data")).expect("ZooKeeper directory");
        // A short tick so that short sessions are allowed (2 to 20 ticks) and a killed node's
        // session runs out soon; no admin server (it would take port 8080), only the two
        // four-letter words the harness uses.
        let config = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={d}/data\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,stat\n",
            d = dir.display()
        );
        std::fs::write(dir.join("zoo.cfg"), config).expect("write zoo.cfg");
        let mut sup = Command::new("sh")
            .arg("-c")
            .arg(ZK_SUPERVISOR)
            .arg("tally-cluster-zookeeper")
            .arg(&java)
            .arg(dir)
            .arg(ZK_JAR)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let pid = read_pid(&dir.join("server.pid"), &mut sup);
        ZooKeeper {
            port,
            dir: dir.to_path_buf(),
            supervisor: Some(sup),
            pid,
        }
    }

    /// Sends a four-letter word and returns the answer (empty if none).
    pub fn four_letter(&self, word: &str) -> String {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(word.as_bytes()).is_err() {
            return String::new();
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        // `stat`, not `ruok`: `ruok` answers `imok` as soon as the port is open, `stat` only
        // once the server serves sessions (before, it says it is "not currently serving").
        // An 18.16 node querying `system.zookeeper` in between has crashed (SIGSEGV).
        while !self.four_letter("stat").starts_with("Zookeeper version") {
            let exited = self
                .supervisor
                .as_mut()
                .is_none_or(|s| s.try_wait().ok().flatten().is_some());
            if started.elapsed() > START_TIMEOUT || exited {
                let log =
                    std::fs::read_to_string(self.dir.join("zookeeper.log")).unwrap_or_default();
                self.stop();
                panic!("ZooKeeper did not start:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn stop(&mut self) {
        if let Some(sup) = self.supervisor.take() {
            stop_supervisor(sup, self.pid, Duration::from_secs(30));
        }
    }
}
