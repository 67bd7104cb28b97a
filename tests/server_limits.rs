//! The HTTP server under abuse, over real TCP against `tally serve`: slowloris and idle floods
//! closed at their timeouts while normal requests are still answered, the connection limit,
//! hyper's own refusals with the JSON body, who may read `/metrics`, the admin listener,
//! `/ready`, a busy port, and a shutdown that a slow client cannot hold.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Collector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The collector's address, for raw sockets.
fn addr(c: &Collector) -> SocketAddr {
    c.base
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

/// Sends `request` on a new connection and reads the answer until the server closes it (at
/// most 15 s), while the request is still being written (a server may answer before it read
/// everything).
async fn exchange(to: SocketAddr, request: Vec<u8>) -> String {
    let stream = TcpStream::connect(to).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may close before it has read all: that is its right.
        let _ = wr.write_all(&request).await;
        wr
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), rd.read_to_end(&mut out)).await;
    let _ = writer.await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Asserts that `answer` is a `status` refusal with a one-line JSON error body.
fn assert_json_refusal(answer: &str, status: u16) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "want {status}, got {answer:.300}"
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// A `/metrics` counter's value in `text` (0 when absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn metrics_of(c: &Collector) -> String {
    let r = common::http().get(c.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// A normal request is answered, and soon.
async fn answered_fast(c: &Collector) -> Duration {
    let start = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        common::http().get(c.url("/health")).send(),
    )
    .await
    .expect("answered within 5 s")
    .unwrap();
    assert_eq!(r.status(), 200);
    start.elapsed()
}

/// Raises this test process's own file descriptor limit for thousands of sockets.
fn many_fds() {
    let n = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        n >= 5_000,
        "file descriptor limit {n} is too low for this test"
    );
}

/// Waits until every task of `closed` has seen its connection closed by the server; returns
/// how long that took at most after `start`.
async fn all_closed(
    closed: Vec<tokio::task::JoinHandle<Result<Instant, String>>>,
    start: Instant,
) -> Duration {
    let mut latest = Duration::ZERO;
    for h in closed {
        let at = h
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("not closed by the server: {e}"));
        latest = latest.max(at.duration_since(start));
    }
    latest
}

#[tokio::test]
async fn slowloris_connections_are_closed_at_the_header_timeout() {
    many_fds();
    let c = Collector::start("[server]\nheader_read_timeout_secs = 2\nidle_timeout_secs = 2");
    let to = addr(&c);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..2000 {
        if i % 250 == 0 {
            // In bursts the kernel's accept queue takes.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(to)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(b"GET /matomo.php HTTP/1.1\r\n")
                .await
                .map_err(|e| format!("write: {e}"))?;
            // A header byte every 700 ms, for ever: only the server ends this.
            let mut buf = [0u8; 512];
            loop {
                tokio::select! {
                    r = s.read(&mut buf) => {
                        // An answer (408) or the close: either way the server gave up.
                        if matches!(r, Ok(0) | Err(_)) {
                            return Ok(Instant::now());
                        }
                    }
                    () = tokio::time::sleep(Duration::from_millis(700)) => {
                        if s.write_all(b"X").await.is_err() {
                            return Ok(Instant::now());
                        }
                    }
                }
                if start.elapsed() > Duration::from_secs(30) {
                    return Err("still open after 30 s".to_string());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let took = answered_fast(&c).await;
    assert!(
        took < Duration::from_secs(1),
        "a normal request took {took:?}"
    );
    let latest = all_closed(tasks, start).await;
    // 2 s from the first byte, plus the time to open 2,000 connections and some slack.
    assert!(
        latest < Duration::from_secs(8),
        "the last slow connection lasted {latest:?}"
    );
    let m = metrics_of(&c).await;
    let header = metric(&m, "tally_connections_timed_out_total{phase=\"header\"}");
    assert!(header >= 2000, "header timeouts counted: {header}\n{m}");
}

#[tokio::test]
async fn an_idle_flood_is_closed_and_normal_requests_answered_meanwhile() {
    many_fds();
    let c = Collector::start("[server]\nheader_read_timeout_secs = 2\nidle_timeout_secs = 3");
    let to = addr(&c);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..2000 {
        if i % 250 == 0 {
            // In bursts the kernel's accept queue takes.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(to)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => Ok(Instant::now()),
                Ok(Ok(n)) => Err(format!("answered: {}", String::from_utf8_lossy(&buf[..n]))),
                Err(_) => Err("still open after 30 s".to_string()),
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let took = answered_fast(&c).await;
    assert!(
        took < Duration::from_secs(1),
        "a normal request took {took:?}"
    );
    let latest = all_closed(tasks, start).await;
    assert!(
        latest < Duration::from_secs(8),
        "the last idle connection lasted {latest:?}"
    );
    let m = metrics_of(&c).await;
    let idle = metric(&m, "tally_connections_timed_out_total{phase=\"idle\"}");
    assert!(idle >= 2000, "idle timeouts counted: {idle}\n{m}");

    // A keep-alive connection waits the idle timeout (3 s), not the header one, for its next
    // request.
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_start = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed within 10 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let lasted = idle_start.elapsed();
    assert!(
        lasted >= Duration::from_millis(2500) && lasted < Duration::from_secs(6),
        "idle keep-alive connection lasted {lasted:?}"
    );
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait() {
    let c = Collector::start("[server]\nmax_connections = 50\nheader_read_timeout_secs = 4");
    let to = addr(&c);
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(to).await.unwrap());
    }
    // The 51st is taken by the kernel but not by tally: its request is not answered.
    let mut waiting = TcpStream::connect(to).await.unwrap();
    waiting
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(1000), waiting.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the 51st connection was served at the limit"
    );
    for _ in 0..9 {
        idle.push(TcpStream::connect(to).await.unwrap());
    }
    // One closes: the waiting one is served.
    drop(idle.remove(0));
    let n = tokio::time::timeout(Duration::from_secs(2), waiting.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The idle ones time out, and normal requests are served.
    tokio::time::sleep(Duration::from_secs(5)).await;
    answered_fast(&c).await;
    let logs = c.logs();
    assert_eq!(
        logs.matches("connection limit reached").count(),
        1,
        "logged once per 10 s:\n{logs}"
    );
    let m = metrics_of(&c).await;
    assert!(metric(&m, "tally_connections_refused_total") >= 1, "{m}");
}

#[tokio::test]
async fn hypers_own_refusals_carry_the_json_body() {
    let c = Collector::start("[server]\nheader_read_timeout_secs = 2\nbody_read_timeout_secs = 2");
    let to = addr(&c);
    // A malformed request line.
    assert_json_refusal(
        &exchange(to, b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await,
        400,
    );
    assert_json_refusal(
        &exchange(to, b"GET / HTTP/1.1\r\nbad header\r\n\r\n".to_vec()).await,
        400,
    );
    // A 70 KB request target: over hyper's own limit.
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    assert_json_refusal(&exchange(to, long.into_bytes()).await, 414);
    // 200 headers, and one header of 100 KB.
    let mut many = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_json_refusal(&exchange(to, many.into_bytes()).await, 431);
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(100_000)
    );
    assert_json_refusal(&exchange(to, big.into_bytes()).await, 431);
    // A head that never ends: 408 at the header timeout.
    let start = Instant::now();
    let answer = exchange(to, b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec()).await;
    assert_json_refusal(&answer, 408);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    // A body that never ends: 408 at the body timeout, and the connection closed.
    let answer = exchange(
        to,
        b"POST /matomo.php?idsite=1&rec=1 HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\nabc"
            .to_vec(),
    )
    .await;
    assert_json_refusal(&answer, 408);
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let m = metrics_of(&c).await;
    assert_eq!(
        metric(&m, "tally_connections_timed_out_total{phase=\"header\"}"),
        1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "tally_connections_timed_out_total{phase=\"body\"}"),
        1,
        "{m}"
    );
    // A good request is still a good request.
    let ok = exchange(
        to,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// The admin listener's address, from the line `tally serve` prints.
async fn admin_base(c: &Collector) -> String {
    let start = Instant::now();
    loop {
        if let Some(line) = c
            .logs()
            .lines()
            .find_map(|l| l.strip_prefix("admin listening on ").map(String::from))
        {
            return line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no admin line:\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_only_for_allowed_peers_or_on_the_admin_listener() {
    // Loopback is allowed by default.
    let open = Collector::start("");
    assert!(metrics_of(&open).await.contains("tally_connections_open"));

    let c =
        Collector::start("[metrics]\nallow = [\"10.0.0.0/8\"]\n[admin]\nlisten = \"127.0.0.1:0\"");
    let http = common::http();
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = http
            .request(method.clone(), c.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not found");
    }
    let admin = admin_base(&c).await;
    let r = http.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("tally_connections_open"), "{text}");
    assert!(text.contains("tally_connections_refused_total"), "{text}");
    for (path, status) in [
        ("/health", 200),
        ("/ready", 200),
        ("/matomo.php", 404),
        ("/", 404),
    ] {
        let r = http.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
    let r = http.post(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn ready_on_a_healthy_collector() {
    let c = Collector::start("");
    let r = common::http().get(c.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = common::http().head(c.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = common::http().get(c.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_busy_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tally.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\n{}",
            common::clickhouse().url(),
            common::unique_name("busy"),
            common::SITE
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::tally_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("TALLY_GEO_AUTO", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: Address already in use"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_slow_client_does_not_hold_the_shutdown() {
    let mut c = Collector::start(
        "[server]\nheader_read_timeout_secs = 60\nbody_read_timeout_secs = 60\nshutdown_grace_secs = 1",
    );
    let to = addr(&c);
    // One trickling a head, one stuck in a body.
    let mut head = TcpStream::connect(to).await.unwrap();
    head.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    let mut body = TcpStream::connect(to).await.unwrap();
    body.write_all(
        b"POST /matomo.php?idsite=1&rec=1 HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\nab",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    assert!(c.stop(), "exited cleanly:\n{}", c.logs());
    let took = start.elapsed();
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
}
