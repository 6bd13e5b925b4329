//! Helpers for end-to-end tests: real processes on loopback, stopped by PID when a test ends.
#![allow(dead_code)]

pub mod exposition;

pub mod hop;

pub mod prometheus;

pub mod sigv4;

pub mod sns;

/// The agent's fake Kubernetes API for its pod watch (its unit tests use it too).
#[path = "../../../agent/src/kubernetes/fake_api.rs"]
#[allow(clippy::unwrap_used, dead_code)]
pub mod fake_api;

/// The collector's fake Lease API (its unit tests use it too).
#[path = "../../../collector/src/sources/prometheus_rules/fake_leases.rs"]
#[allow(clippy::unwrap_used)]
pub mod fake_leases;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1, held by this test until the process that listens on it starts
/// ([`start_sextant`] and [`start_moto`] let go of the ports they are given).
pub fn free_port() -> u16 {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // Bound, never listening: other tests and outgoing connections cannot take the port, and a
    // connection to it is refused as to a closed port. Its listener binds it with SO_REUSEADDR
    // (as tokio does), and the hold ends when the process that listens on it starts.
    socket.set_reuse_address(true).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    let port = socket
        .local_addr()
        .unwrap()
        .as_socket()
        .map(|a| a.port())
        .unwrap();
    held().insert(port, socket);
    port
}

/// Holds `port` again after the process that listened on it stopped, until the next one that
/// names it starts: a port left free for long (a collector down for a minute) can be taken by
/// any other test's listener or outgoing connection, which the restarted process then cannot
/// bind — or worse, the client reaches a stranger. Panics when someone took it already.
pub fn hold_port(port: u16) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket
        .bind(&addr.into())
        .unwrap_or_else(|e| panic!("port {port} was taken while its process was down: {e}"));
    held().insert(port, socket);
}

fn held() -> std::sync::MutexGuard<'static, std::collections::HashMap<u16, socket2::Socket>> {
    static HELD: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<u16, socket2::Socket>>,
    > = std::sync::LazyLock::new(std::sync::Mutex::default);
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets go of `port` for the process about to listen on it.
pub fn release_port(port: u16) {
    held().remove(&port);
}

/// Lets go of every held port that `text` (a config) names as `:PORT`.
pub fn release_ports_in(text: &str) {
    held().retain(|port, _| {
        let needle = format!(":{port}");
        !text.match_indices(&needle).any(|(i, m)| {
            !text[i + m.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    });
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait; returns whether it exited successfully within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// moto's server: `$MOTO_SERVER`, else the repository's `.venv` (made by scripts/test), else PATH.
pub fn moto_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// Starts moto on `port` and waits until it answers.
pub fn start_moto(port: u16) -> Proc {
    release_port(port);
    let child = Command::new(moto_server_binary())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server must be installed: run scripts/test, which installs it into .venv");
    let proc = Proc {
        child,
        name: "moto",
    };
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/moto-api/"),
        Duration::from_secs(30),
    );
    proc
}

/// Polls a URL with a bare HTTP/1.0 GET until it answers 200.
pub fn wait_http_ok(url: &str, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if http_get(url).is_some_and(|(status, _)| status == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not answer 200 within {timeout:?}");
}

/// A minimal HTTP GET on loopback: (status, body).
pub fn http_get(url: &str) -> Option<(u16, String)> {
    http_call("GET", url, None)
}

/// `POST`s `json` to `url` over HTTP/1.0: (status, body), `None` when unreachable.
pub fn http_post_json(url: &str, json: &str) -> Option<(u16, String)> {
    http_call("POST", url, Some(json))
}

fn http_call(method: &str, url: &str, json: Option<&str>) -> Option<(u16, String)> {
    use std::io::Read;
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    match json {
        None => write!(s, "{method} {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?,
        Some(body) => write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?,
    }
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Runs Python `code` (with `args`) in the test venv to its end; its stdout, after asserting it
/// succeeded (its stderr in the panic).
pub fn run_python(code: &str, args: &[&str]) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a program to its end: its exit code (-1 when killed by a signal) and its stdout and
/// stderr together.
pub fn run_program(program: &str, args: &[&str]) -> (i32, String) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// Starts `sextant <role> --config <file>` with moto's fake credentials in its environment.
pub fn start_sextant(role: &str, config: &Path, log: &Path) -> Proc {
    release_ports_in(&std::fs::read_to_string(config).unwrap_or_default());
    let log_file = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([role, "--config", config.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SEXTANT_LOG", "info,sextant_pipeline::sink::request=debug")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    Proc {
        child,
        name: "sextant",
    }
}

/// The sum of offsets in a file source's checkpoint store (0 when it does not exist yet).
pub fn committed_offset(store: &Path) -> u64 {
    let text = std::fs::read_to_string(store).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["files"]
        .as_array()
        .map(|f| f.iter().map(|e| e["offset"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0)
}

/// A counter's value from a Prometheus exposition, summed over series whose labels contain
/// every `label="value"` pair given.
pub fn metric_sum(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    metric_read(exposition, name, labels).unwrap_or_else(|| {
        panic!("no series of {name} with {labels:?} in the exposition: a typo, or it never existed")
    })
}

/// [`metric_sum`] for a series that may rightly not exist yet (a drop reason never counted,
/// a component still starting): 0 then.
pub fn metric_sum_or_zero(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    metric_read(exposition, name, labels).unwrap_or(0.0)
}

/// The sum of the series of `name` carrying every label in `labels`; `None` when none does.
pub fn metric_read(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|p| l.contains(p))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// What the fault proxy does with the next matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer 400 with a throttling error: `ThrottlingException` in AWS JSON, or `Throttling` in
    /// XML to a query-protocol (form-encoded) request.
    Throttle,
    /// Answer 503 with an empty body.
    Unavailable,
    /// Answer 400 with an AWS JSON `InvalidParameterException` (a permanent refusal).
    Invalid,
    /// Read the request and answer nothing for this long (the client times out).
    Hang(Duration),
    /// Forward this one unchanged (to interleave faults with successes).
    Pass,
    /// Forward it, then answer as X-Ray does when it leaves a document unprocessed: the first
    /// document of the request listed in `UnprocessedTraceSegments` (the server did store it).
    Unprocessed,
    /// Forward a bulk request, then answer as OpenSearch does when a node's write queue is
    /// full: its first item refused with 429 `es_rejected_execution_exception` (the server did
    /// store it), the others as the server answered.
    ThrottleFirstBulkItem,
}

/// A fault-injecting HTTP/1.1 proxy in front of a real server, for the failures the test servers
/// never produce. This is a stand-in written for the tests, not a real component: requests whose
/// headers contain `match_header` get the next fault from `faults` (until they run out), every
/// other request is forwarded unchanged. Runs on a thread until the test process ends.
pub struct FaultProxy {
    pub port: u16,
    pub injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The bodies of the requests that matched, in order.
    pub matched: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl FaultProxy {
    pub fn start(upstream: u16, match_header: &'static str, faults: Vec<Fault>) -> Self {
        use std::sync::atomic::AtomicUsize;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(std::collections::VecDeque::from(faults)));
        let injected = Arc::new(AtomicUsize::new(0));
        let matched: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let (counter, bodies) = (injected.clone(), matched.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let faults = faults.clone();
                let (counter, bodies) = (counter.clone(), bodies.clone());
                std::thread::spawn(move || {
                    let _ = serve_connection(
                        conn,
                        upstream,
                        match_header,
                        &faults,
                        (&counter, &bodies),
                    );
                });
            }
        });
        FaultProxy {
            port,
            injected,
            matched,
        }
    }
}

/// Reads one HTTP/1.1 request: its head (request line and headers) and body.
pub fn read_request(conn: &mut std::net::TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

/// Sends one request upstream on its own connection; the whole response.
fn forward(head: &str, body: &[u8], upstream: u16) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream))?;
    let head = head.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    Ok(response)
}

fn serve_connection(
    mut conn: std::net::TcpStream,
    upstream: u16,
    match_header: &str,
    faults: &std::sync::Mutex<std::collections::VecDeque<Fault>>,
    (injected, matched): (
        &std::sync::atomic::AtomicUsize,
        &std::sync::Mutex<Vec<Vec<u8>>>,
    ),
) -> std::io::Result<()> {
    while let Some((head, body)) = read_request(&mut conn)? {
        let fault = if head.contains(match_header) {
            matched.lock().unwrap().push(body.clone());
            faults.lock().unwrap().pop_front()
        } else {
            None
        }
        .filter(|f| *f != Fault::Pass);
        if let Some(fault) = fault {
            injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match fault {
                // AWS query-protocol APIs (form bodies, like CloudWatch's) answer errors in XML.
                Fault::Throttle if head.to_ascii_lowercase().contains("x-www-form-urlencoded") => {
                    let body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>";
                    write!(conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
                }
                Fault::Throttle => {
                    let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                    write!(conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
                }
                Fault::Unavailable => write!(
                    conn,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                )?,
                Fault::Invalid => {
                    let body = r#"{"__type":"InvalidParameterException","message":"refused for the test"}"#;
                    write!(
                        conn,
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )?;
                }
                Fault::Hang(d) => {
                    std::thread::sleep(d);
                    return Ok(());
                }
                Fault::Unprocessed => {
                    forward(&head, &body, upstream)?;
                    let request: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    let first: serde_json::Value = request["TraceSegmentDocuments"][0]
                        .as_str()
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    let answer = serde_json::json!({"UnprocessedTraceSegments": [{"Id": first["id"], "ErrorCode": "ThrottledException", "Message": "injected by the test"}]}).to_string();
                    write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}", answer.len())?;
                }
                Fault::ThrottleFirstBulkItem => {
                    let response = forward(&head, &body, upstream)?;
                    let text = String::from_utf8_lossy(&response).into_owned();
                    let (_, json) = text.split_once("\r\n\r\n").unwrap_or(("", "{}"));
                    let mut answer: serde_json::Value =
                        serde_json::from_str(json).unwrap_or_default();
                    answer["errors"] = true.into();
                    answer["items"][0]["create"]["status"] = 429.into();
                    answer["items"][0]["create"]["error"] = serde_json::json!({"type": "es_rejected_execution_exception", "reason": "injected by the test"});
                    let answer = answer.to_string();
                    write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}", answer.len())?;
                }
                Fault::Pass => {}
            }
            continue;
        }
        let response = forward(&head, &body, upstream)?;
        conn.write_all(&response)?;
        // The upstream answered "Connection: close" or similar: let the client reconnect.
        return Ok(());
    }
    Ok(())
}

/// AWS SDK settings for moto on `port` (us-east-1, static test credentials), to read back
/// what a sink wrote.
pub async fn moto_sdk_config(port: u16) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .load()
        .await
}

/// A CloudWatch Logs client for moto on `port`.
pub async fn cwl_client(port: u16) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&moto_sdk_config(port).await)
}

/// The body of each message in a CloudWatch Logs stream, oldest first: the `message` field of a
/// JSON-encoded record (the sink's default encoding), else the message as it is. Empty if the
/// stream does not exist (yet).
pub async fn read_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<String> {
    read_stream_messages(client, group, stream)
        .await
        .into_iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(&m)
                .ok()
                .and_then(|v| v.get("message").and_then(|b| b.as_str()).map(str::to_owned))
                .unwrap_or(m)
        })
        .collect()
}

/// Every message in a CloudWatch Logs stream as CloudWatch holds it, oldest first (following
/// forward tokens to the end); empty if the stream does not exist (yet).
pub async fn read_stream_messages(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let r = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await;
        let Ok(r) = r else { return out };
        let events = r.events();
        out.extend(events.iter().filter_map(|e| e.message().map(str::to_owned)));
        let next = r.next_forward_token().map(str::to_owned);
        if events.is_empty() || next == token {
            return out;
        }
        token = next;
    }
}

/// Polls a stream until it holds at least `n` messages (or 30 s pass); returns what it holds.
pub async fn wait_for_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    n: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..300 {
        got = read_stream(client, group, stream).await;
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

/// POSTs an OTLP/HTTP protobuf body to `path` (`/v1/metrics`, `/v1/traces`); the status code.
pub fn post_otlp(port: u16, path: &str, body: &[u8]) -> u16 {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The records of the file sink's `metrics.jsonl` in `dir`.
pub fn metric_records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Starts a server program (Prometheus, node_exporter) on `port` and waits for its `/metrics`.
pub fn start_server(name: &'static str, program: &str, args: &[String], port: u16) -> Proc {
    release_port(port);
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test installs it): {e}"));
    let proc = Proc { child, name };
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_secs(30),
    );
    proc
}

pub async fn cloudwatch(port: u16) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&moto_sdk_config(port).await)
}

/// One statistic of a metric over the last hour (a sum over periods for Sum and SampleCount, the
/// extreme for Minimum and Maximum; infinite when there is no datapoint).
pub async fn statistic(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dims: &[(&str, &str)],
    stat: &str,
) -> f64 {
    let now = std::time::SystemTime::now();
    let metric = aws_sdk_cloudwatch::types::Metric::builder()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            dims.iter()
                .map(|(n, v)| {
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name(*n)
                        .value(*v)
                        .build()
                })
                .collect(),
        ))
        .build();
    let query = aws_sdk_cloudwatch::types::MetricDataQuery::builder()
        .id("q")
        .metric_stat(
            aws_sdk_cloudwatch::types::MetricStat::builder()
                .metric(metric)
                .period(3600)
                .stat(stat)
                .build(),
        )
        .build();
    let r = client
        .get_metric_data()
        .metric_data_queries(query)
        .start_time((now - Duration::from_secs(3600)).into())
        .end_time((now + Duration::from_secs(600)).into())
        .send()
        .await
        .unwrap();
    // The window can span two periods: sums add up, extremes are the extreme of both.
    let values = r
        .metric_data_results()
        .iter()
        .flat_map(|m| m.values().iter().copied());
    match stat {
        "Minimum" => values.fold(f64::INFINITY, f64::min),
        "Maximum" => values.fold(f64::NEG_INFINITY, f64::max),
        _ => values.sum(),
    }
}

/// Starts `sextant agent` with one source, `name: {source}` (YAML flow mapping), into a file
/// sink; returns the process and the sink's directory.
pub fn start_agent_to_files(dir: &Path, name: &str, source: &str) -> (Proc, PathBuf) {
    let out = dir.join("out");
    let admin = free_port();
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {data}\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\nagent:\n  sources:\n    {name}: {source}\n  sinks:\n    out: {{ type: file, inputs: [{name}], path: {out} }}\n",
            data = dir.join("data").display(),
            out = out.display(),
        ),
    )
    .unwrap();
    (start_sextant("agent", &config, &dir.join("agent.log")), out)
}

/// Serves `/metrics` with `temperature{room="server"}` and `temperature{room="lab"}`, both at
/// the value `temperature` holds (an f64's bits), for the alerting tests; returns the port.
pub fn serve_rooms(temperature: std::sync::Arc<std::sync::atomic::AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let t = f64::from_bits(temperature.load(std::sync::atomic::Ordering::SeqCst));
            let body = format!(
                "# TYPE temperature gauge\ntemperature{{room=\"server\"}} {t}\ntemperature{{room=\"lab\"}} {t}\n"
            );
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

/// An `agent:` section scraping the rooms target every second into `collectors` (balanced).
pub fn rooms_agent(target: u16, collectors: &[u16]) -> String {
    let endpoints: Vec<String> = collectors
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}\""))
        .collect();
    format!(
        r#"agent:
  sources:
    scrape:
      type: prometheus_scrape
      scrape_interval: 1s
      scrape_configs:
        - job_name: rooms
          static_configs: [{{ targets: ["127.0.0.1:{target}"] }}]
  sinks:
    to_collector: {{ type: otlp, inputs: [scrape], endpoints: [{}], batch: {{ max_events: 1 }} }}"#,
        endpoints.join(", ")
    )
}

/// The head of a `sextant run` configuration for the alerting tests: `data_dir`, `admin` (its
/// port is returned), an agent scraping the rooms target every second into the collector's
/// `otlp` source, and that source; the test appends its own sources and sinks.
pub fn rooms_run(data: &Path, target: u16) -> (String, u16) {
    let (admin, otlp) = (free_port(), free_port());
    let head = format!(
        "data_dir: {}\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\n{}\ncollector:\n  sources:\n    otlp: {{ type: otlp, address: \"127.0.0.1:{otlp}\" }}\n",
        data.display(),
        rooms_agent(target, &[otlp])
    );
    (head, admin)
}
