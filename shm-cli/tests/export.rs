//! `shm export`, run as a user runs it: the `shm` binary serving segments these tests create,
//! scraped over HTTP by a real client, its output checked value by value against snapshots,
//! validated with `promtool check metrics`, and scraped by a real Prometheus server.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package (`.ci/run` installs it).
//! Without them the tests that need them fail and say so, unless `SHM_SKIP_PROMETHEUS=1` skips
//! those parts on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::{chown, FileExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shm_core::{Array, Shared, SharedLayout, Value};
use tests::{requires_root, TestName};

// ---------------------------------------------------------------------------------------------
// Types the exporter sees only through the segments' descriptors.

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Pool {
    idle: i32,
    handed_out_total: u64,
}

/// An enum: a state set, one sample per variant.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(u8)]
enum Phase {
    #[default]
    Starting,
    Serving,
    Draining = 5,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Starting, Phase::Serving, Phase::Draining];

    fn name(self) -> String {
        format!("{self:?}")
    }
}

/// Counters, gauges of every kind of number, a bool, a char, an enum, a 1-D and a 2-D array, a
/// nested struct.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Web {
    requests_total: u64,
    errors_total: u32,
    load: f64,
    temperature: f32,
    healthy: bool,
    grade: char,
    phase: Phase,
    latency: [u32; 3],
    grid: [[i16; 2]; 2],
    pool: Pool,
}

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Slot {
    served_total: u64,
    busy: bool,
    phase: Phase,
}

/// Two counters every update keeps equal.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Pair {
    left_total: u64,
    right_total: u64,
}

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Conns {
    open: u8,
}

/// `conns_open` and `conns.open` both make the metric name `shm_conns_open`.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Clashing {
    conns_open: u8,
    conns: Conns,
}

// ---------------------------------------------------------------------------------------------
// Tools.

/// Whether `tool` (from Debian's `prometheus` package) runs. If not, the test fails and says
/// what to install, unless `SHM_SKIP_PROMETHEUS` asks to skip that part on purpose.
fn have(tool: &str) -> bool {
    let runs = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if runs {
        return true;
    }
    assert!(
        std::env::var_os("SHM_SKIP_PROMETHEUS").is_some(),
        "`{tool}` is not installed: install Debian's `prometheus` package (apt-get install prometheus), or set SHM_SKIP_PROMETHEUS=1 to skip what needs it on purpose"
    );
    eprintln!("`{tool}` not run: it is not installed and SHM_SKIP_PROMETHEUS is set");
    false
}

// ---------------------------------------------------------------------------------------------
// Processes: the exporter and Prometheus, killed and reaped when dropped.

/// `shm export --listen 127.0.0.1:0 ARGS`, and the address it says it serves on.
struct Exporter {
    child: Child,
    addr: String,
}

impl Exporter {
    fn start(args: &[&str]) -> Exporter {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shm"))
            .args(["export", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run shm export");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Made before the wait, so a failure below still kills the child.
        let mut exporter = Exporter {
            child,
            addr: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("shm export printed no address");
        exporter.addr = line
            .trim_end()
            .strip_prefix("shm export: serving http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("not the line announcing the address: {line:?}"))
            .to_owned();
        exporter
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /metrics` in the 0.0.4 text format, which must answer 200 with a valid page.
    fn scrape(&self) -> Page {
        let reply = get(&self.url("/metrics"), None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.content_type,
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Page::parse(&reply.body, false)
    }

    /// `GET /metrics` asking for OpenMetrics, as Prometheus does.
    fn scrape_openmetrics(&self) -> Page {
        let reply = get(&self.url("/metrics"), Some(PROMETHEUS_ACCEPT));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        Page::parse(&reply.body, true)
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A directory of its own under the temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(TestName::prefix(tag));
        fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A Prometheus server scraping `target` every second, with its storage in a temporary
/// directory; killed, reaped and its directory removed when dropped (in this order: fields drop
/// in declaration order).
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.0.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: shm\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.0.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("run prometheus");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The samples `query` gives now, as (labels, value); `None` while Prometheus is not
    /// answering yet.
    fn query(&mut self, query: &str) -> Option<Vec<(BTreeMap<String, String>, String)>> {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
        let mut reply = agent()
            .get(format!("{}/api/v1/query", self.url))
            .query("query", query)
            .call()
            .ok()?;
        if reply.status() != 200 {
            return None;
        }
        let body = reply.body_mut().read_to_string().unwrap();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "success", "{body}");
        Some(
            json["data"]["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let labels = r["metric"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect();
                    (labels, r["value"][1].as_str().unwrap().to_owned())
                })
                .collect(),
        )
    }

    /// Waits (at most two minutes) until `query` gives exactly one sample whose value is
    /// `value`; returns its labels.
    fn wait_for(&mut self, query: &str, value: &str) -> BTreeMap<String, String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(result) = self.query(query) {
                if let [(labels, v)] = result.as_slice() {
                    if v == value {
                        return labels.clone();
                    }
                }
                last = Some(result);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "prometheus never gave {query} = {value}; last answer: {last:?}\nlog:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A thread that runs until told to stop; told and joined when dropped, so a failing test
/// leaves no thread writing or creating segments behind.
struct Background<T> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Background<T> {
    fn spawn(body: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Background<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        Background {
            stop,
            thread: Some(std::thread::spawn(move || body(&flag))),
        }
    }

    /// Stops the thread and returns what it returned.
    fn finish(mut self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// HTTP.

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

fn get(url: &str, accept: Option<&str>) -> Reply {
    let mut request = agent().get(url);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Reply {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: response.body_mut().read_to_string().unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// The exposition formats, read strictly: a page these tests accept has every sample under a
// family declared once with HELP and TYPE, no series twice, and (OpenMetrics) ends in `# EOF`.

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: String,
}

#[derive(Debug)]
struct Page {
    body: String,
    families: Vec<Family>,
    samples: Vec<Series>,
    comments: Vec<String>,
}

impl Page {
    fn parse(body: &str, openmetrics: bool) -> Page {
        let fail = |line: &str, why: &str| -> ! { panic!("{why}: {line:?}\nin page:\n{body}") };
        let mut page = Page {
            body: body.to_owned(),
            families: Vec::new(),
            samples: Vec::new(),
            comments: Vec::new(),
        };
        let mut lines: Vec<&str> = body.split_inclusive('\n').collect();
        if openmetrics && lines.pop() != Some("# EOF\n") {
            fail("", "an OpenMetrics page ends with `# EOF`");
        }
        let mut series = BTreeSet::new();
        let mut pending_help: Option<(String, String)> = None;
        for raw in lines {
            let Some(line) = raw.strip_suffix('\n') else {
                fail(raw, "a line without its line feed");
            };
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| fail(line, "no HELP text"));
                if pending_help.is_some() {
                    fail(line, "HELP after HELP");
                }
                pending_help = Some((name.to_owned(), unescape(help, openmetrics)));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| fail(line, "no type"));
                let Some((help_name, help)) = pending_help.take() else {
                    fail(line, "TYPE without HELP before it")
                };
                if help_name != name {
                    fail(line, "TYPE of another family than the HELP before it");
                }
                if page.families.iter().any(|f| f.name == name) {
                    fail(line, "a family declared twice");
                }
                let kinds: &[&str] = if openmetrics {
                    &["gauge", "counter", "info", "stateset"]
                } else {
                    &["gauge", "counter"]
                };
                if !kinds.contains(&kind) {
                    fail(line, "not a type this exporter writes");
                }
                page.families.push(Family {
                    name: name.to_owned(),
                    help,
                    kind: kind.to_owned(),
                });
            } else if let Some(comment) = line.strip_prefix("# ") {
                if openmetrics {
                    fail(line, "OpenMetrics has no comments");
                }
                page.comments.push(comment.to_owned());
            } else {
                let s = parse_sample(line).unwrap_or_else(|why| fail(line, &why));
                let Some(family) = page.families.last() else {
                    fail(line, "a sample before any TYPE")
                };
                let expected = match (openmetrics, family.kind.as_str()) {
                    (true, "counter") => format!("{}_total", family.name),
                    (true, "info") => format!("{}_info", family.name),
                    _ => family.name.clone(),
                };
                if s.name != expected {
                    fail(line, "a sample outside its family");
                }
                if !series.insert((s.name.clone(), s.labels.clone())) {
                    fail(line, "a series twice");
                }
                page.samples.push(s);
            }
        }
        if pending_help.is_some() {
            fail("", "HELP without TYPE");
        }
        page
    }

    fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name} in\n{}", self.body))
    }

    /// The samples of segment `segment`, sorted.
    fn of(&self, segment: &str) -> Vec<Series> {
        let mut out: Vec<Series> = self
            .samples
            .iter()
            .filter(|s| s.labels.get("segment").map(String::as_str) == Some(segment))
            .filter(|s| !s.name.starts_with("shm_export_"))
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// The value of `shm_export_errors_total{segment, kind}`, 0 if it has none.
    fn errors(&self, segment: &str, kind: &str) -> u64 {
        self.samples
            .iter()
            .find(|s| {
                s.name == "shm_export_errors_total"
                    && s.labels.get("segment").map(String::as_str) == Some(segment)
                    && s.labels.get("kind").map(String::as_str) == Some(kind)
            })
            .map_or(0, |s| s.value.parse().unwrap())
    }

    /// The comments that mention `text`.
    fn comments_about(&self, text: &str) -> Vec<&str> {
        self.comments
            .iter()
            .filter(|c| c.contains(text))
            .map(String::as_str)
            .collect()
    }
}

/// `name{label="value",...} value`, label values unescaped.
fn parse_sample(line: &str) -> Result<Series, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    let valid = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (!first && c.is_ascii_digit())
    };
    if name.is_empty() || !name.chars().enumerate().all(|(i, c)| valid(c, i == 0)) {
        return Err("not a metric name".into());
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let eq = inner.find("=\"").ok_or("a label without a value")?;
            let label = &inner[..eq];
            if label.is_empty() || !label.chars().enumerate().all(|(i, c)| valid(c, i == 0)) {
                return Err("not a label name".into());
            }
            let mut value = String::new();
            let mut chars = inner[eq + 2..].char_indices();
            let end = loop {
                match chars
                    .next()
                    .ok_or("a label value without its closing quote")?
                {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("a lone backslash")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        _ => return Err("an unknown escape".into()),
                    },
                    (_, c) => value.push(c),
                }
            };
            if labels.insert(label.to_owned(), value).is_some() {
                return Err("a label twice".into());
            }
            inner = &inner[eq + 2 + end + 1..];
            if let Some(more) = inner.strip_prefix(',') {
                inner = more;
            } else if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            } else {
                return Err("labels not closed".into());
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    if value.parse::<f64>().is_err() && !["NaN", "+Inf", "-Inf"].contains(&value) {
        return Err("not a number".into());
    }
    Ok(Series {
        name: name.to_owned(),
        labels,
        value: value.to_owned(),
    })
}

fn unescape(text: &str, quotes: bool) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('\\')) | ('\\', Some('n')) => {
                out.push(if chars.next() == Some('n') {
                    '\n'
                } else {
                    '\\'
                });
            }
            ('\\', Some('"')) if quotes => {
                chars.next();
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    out
}

/// `promtool check metrics` must print nothing and exit 0 on `body` (it exits non-zero on lint
/// warnings too).
fn promtool_accepts(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\non:\n{body}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// What each segment must give, built from a snapshot.

/// An exported value: integers exactly as written; floats must read back as the same number.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    F64(f64),
    F32(f32),
}

/// A label's name and value.
type Label = (String, String);

struct Expect {
    segment: String,
    type_name: &'static str,
    /// Name, index, the one label more (an info's text, a state set's variant), value.
    samples: Vec<(String, Option<String>, Option<Label>, Num)>,
}

impl Expect {
    fn new(segment: &str, type_name: &'static str) -> Expect {
        Expect {
            segment: segment.to_owned(),
            type_name,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, index: Option<&str>, value: Num) {
        self.samples
            .push((name.to_owned(), index.map(str::to_owned), None, value));
    }

    fn info(&mut self, name: &str, text: &str) {
        self.samples.push((
            name.to_owned(),
            None,
            Some(("value".to_owned(), text.to_owned())),
            Num::Int(1),
        ));
    }

    /// The state set `name` of an enum holding `now`: one sample per variant, labelled by the
    /// family's name, 1 for `now` and 0 for the others (all 0 if `now` is `None`).
    fn states(&mut self, name: &str, index: Option<&str>, now: Option<Phase>) {
        for p in Phase::ALL {
            self.samples.push((
                name.to_owned(),
                index.map(str::to_owned),
                Some((name.to_owned(), p.name())),
                Num::Int((Some(p) == now).into()),
            ));
        }
    }

    /// The page has exactly these samples for this segment.
    fn check(&self, page: &Page) {
        let got = page.of(&self.segment);
        let mut want: Vec<(String, BTreeMap<String, String>, Num)> = self
            .samples
            .iter()
            .map(|(name, index, text, num)| {
                let mut labels = BTreeMap::from([
                    ("segment".to_owned(), self.segment.clone()),
                    ("type".to_owned(), self.type_name.to_owned()),
                ]);
                if let Some(i) = index {
                    labels.insert("index".to_owned(), i.clone());
                }
                if let Some((k, v)) = text {
                    labels.insert(k.clone(), v.clone());
                }
                (name.clone(), labels, *num)
            })
            .collect();
        want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let keys = |v: &[Series]| -> Vec<(String, BTreeMap<String, String>)> {
            v.iter()
                .map(|s| (s.name.clone(), s.labels.clone()))
                .collect()
        };
        let want_keys: Vec<_> = want.iter().map(|w| (w.0.clone(), w.1.clone())).collect();
        assert_eq!(
            keys(&got),
            want_keys,
            "series of `{}`\n{}",
            self.segment,
            page.body
        );
        for (s, (_, _, num)) in got.iter().zip(&want) {
            let same = match *num {
                Num::Int(i) => s.value == i.to_string(),
                Num::F64(v) if v.is_nan() => s.value == "NaN",
                Num::F64(v) => read_float(&s.value) == Some(v),
                Num::F32(v) if v.is_nan() => s.value == "NaN",
                // The shortest text of the f32, read as Prometheus reads it (an f64), is that
                // text's value: `0.1`, not 0.10000000149011612.
                Num::F32(v) => {
                    read_float(&s.value).map(|f| f as f32) == Some(v)
                        && read_float(&s.value) == read_float(&shortest_f32(v))
                }
            };
            assert!(same, "{s:?} should be {num:?}\n{}", page.body);
        }
    }
}

fn read_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

fn shortest_f32(v: f32) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

fn expect_web(segment: &str, w: &Web) -> Expect {
    let mut e = Expect::new(segment, "Web");
    e.add(
        "shm_requests_total",
        None,
        Num::Int(w.requests_total.into()),
    );
    e.add("shm_errors_total", None, Num::Int(w.errors_total.into()));
    e.add("shm_load", None, Num::F64(w.load));
    e.add("shm_temperature", None, Num::F32(w.temperature));
    e.add("shm_healthy", None, Num::Int(w.healthy.into()));
    e.info("shm_grade_info", &w.grade.to_string());
    e.states("shm_phase", None, Some(w.phase));
    for (i, v) in w.latency.iter().enumerate() {
        e.add("shm_latency", Some(&i.to_string()), Num::Int((*v).into()));
    }
    for (i, row) in w.grid.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            e.add("shm_grid", Some(&format!("{i},{j}")), Num::Int((*v).into()));
        }
    }
    e.add("shm_pool_idle", None, Num::Int(w.pool.idle.into()));
    e.add(
        "shm_pool_handed_out_total",
        None,
        Num::Int(w.pool.handed_out_total.into()),
    );
    e
}

fn expect_slots(segment: &str, slots: &[Slot]) -> Expect {
    let mut e = Expect::new(segment, "Slot");
    for (i, s) in slots.iter().enumerate() {
        e.add(
            "shm_served_total",
            Some(&i.to_string()),
            Num::Int(s.served_total.into()),
        );
        e.add("shm_busy", Some(&i.to_string()), Num::Int(s.busy.into()));
        e.states("shm_phase", Some(&i.to_string()), Some(s.phase));
    }
    e
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn values_match_snapshots_in_both_formats() {
    let p = TestName::prefix("values");
    let web_name = format!("{p}web");
    let web = Shared::<Web>::create(
        &web_name,
        Web {
            requests_total: u64::MAX - 1,
            errors_total: 3,
            load: 0.7,
            temperature: 0.1,
            healthy: true,
            grade: 'é',
            phase: Phase::Serving,
            latency: [5, 0, u32::MAX],
            grid: [[-1, 2], [3, i16::MIN]],
            pool: Pool {
                idle: -7,
                handed_out_total: 12,
            },
        },
    )
    .unwrap();
    let slots_name = format!("{p}slots");
    let slots = Array::<Slot>::create(
        &slots_name,
        &[
            Slot {
                served_total: 10,
                busy: true,
                phase: Phase::Draining,
            },
            Slot::default(),
            Slot {
                served_total: 1 << 60,
                busy: false,
                phase: Phase::Serving,
            },
        ],
    )
    .unwrap();
    let value_name = format!("{p}value");
    let value = Value::<i64>::create(&value_name, -42).unwrap();
    let counts_name = format!("{p}counts");
    let counts = Array::<u16>::create(&counts_name, &[1, 2, u16::MAX]).unwrap();

    // A name given twice is exported once.
    let exporter = Exporter::start(&[&web_name, &slots_name, &value_name, &counts_name, &web_name]);
    let check_all = |page: &Page| {
        expect_web(&web_name, &web.snapshot()).check(page);
        expect_slots(&slots_name, &slots.snapshot()).check(page);
        let mut v = Expect::new(&value_name, "i64");
        v.add("shm_value", None, Num::Int(value.snapshot().into()));
        v.check(page);
        let mut c = Expect::new(&counts_name, "u16");
        for (i, n) in counts.snapshot().iter().enumerate() {
            c.add("shm_value", Some(&i.to_string()), Num::Int((*n).into()));
        }
        c.check(page);
        assert_eq!(page.comments, Vec::<String>::new(), "{}", page.body);
        assert_eq!(page.errors(&web_name, "not_found"), 0);
    };

    // The 0.0.4 text format: counters keep `_total` in their family name; a char is a gauge
    // of value 1 named `_info`.
    let text = exporter.scrape();
    check_all(&text);
    let kinds: BTreeMap<&str, &str> = text
        .families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("shm_requests_total", "counter"),
            ("shm_errors_total", "counter"),
            ("shm_load", "gauge"),
            ("shm_temperature", "gauge"),
            ("shm_healthy", "gauge"),
            ("shm_grade_info", "gauge"),
            ("shm_phase", "gauge"),
            ("shm_latency", "gauge"),
            ("shm_grid", "gauge"),
            ("shm_pool_idle", "gauge"),
            ("shm_pool_handed_out_total", "counter"),
            ("shm_served_total", "counter"),
            ("shm_busy", "gauge"),
            ("shm_value", "gauge"),
            ("shm_export_segments", "gauge"),
        ])
    );
    assert_eq!(
        text.family("shm_phase").help,
        "Read from shm segments: [i].phase (Phase) of Array<Slot>; phase (Phase) of Shared<Web>."
    );
    assert_eq!(
        text.family("shm_grid").help,
        "Read from shm segments: grid[i][j] (i16) of Shared<Web>."
    );
    assert_eq!(
        text.family("shm_value").help,
        "Read from shm segments: [i] (u16) of Array<u16>; value (i64) of Value<i64>."
    );
    assert_eq!(
        text.samples
            .iter()
            .find(|s| s.name == "shm_export_segments")
            .map(|s| s.value.as_str()),
        Some("4")
    );
    if have("promtool") {
        promtool_accepts(&text.body);
    }

    // OpenMetrics: the same samples; families of counters and infos are named without their
    // suffix.
    let om = exporter.scrape_openmetrics();
    check_all(&om);
    assert_eq!(om.samples, text.samples);
    assert_eq!(om.family("shm_requests").kind, "counter");
    assert_eq!(om.family("shm_grade").kind, "info");
    assert_eq!(om.family("shm_phase").kind, "stateset");
    assert_eq!(om.family("shm_load").kind, "gauge");

    // New values, special floats and a char that needs escaping: the next scrape has them.
    web.update(|w| {
        w.requests_total = u64::MAX;
        w.load = f64::NAN;
        w.temperature = f32::NEG_INFINITY;
        w.healthy = false;
        w.grade = '"';
        w.phase = Phase::Draining;
        w.latency[1] = 77;
        w.pool.idle = i32::MIN;
    });
    slots[1].busy.store(true, Ordering::Relaxed);
    slots[1].phase.store(Phase::Serving, Ordering::Relaxed);
    value.store(i64::MAX, Ordering::Relaxed);
    let text = exporter.scrape();
    check_all(&text);
    if have("promtool") {
        promtool_accepts(&text.body);
    }
    check_all(&exporter.scrape_openmetrics());

    // Only /metrics, only GET and HEAD.
    let other = get(&exporter.url("/"), None);
    assert_eq!(other.status, 404);
    assert_eq!(get(&exporter.url("/metricsx"), None).status, 404);
    let post = agent().post(exporter.url("/metrics")).send_empty().unwrap();
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(
        post.headers().get("allow").map(|v| v.to_str().unwrap()),
        Some("GET, HEAD")
    );
    let head = agent().head(exporter.url("/metrics")).call().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    // A query string does not change the path.
    assert_eq!(get(&exporter.url("/metrics?x=1"), None).status, 200);
}

#[test]
fn every_scrape_reads_each_segment_once_consistently() {
    let p = TestName::prefix("consistent");
    let name = format!("{p}pair");
    let pair = Arc::new(Shared::<Pair>::create(&name, Pair::default()).unwrap());
    let exporter = Exporter::start(&[&name]);
    let writer = {
        let pair = Arc::clone(&pair);
        Background::spawn(move |stop| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                pair.update(|p| {
                    p.left_total += 1;
                    p.right_total += 1;
                });
                n += 1;
            }
            n
        })
    };
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let page = exporter.scrape();
        let samples = page.of(&name);
        let value = |metric: &str| {
            samples
                .iter()
                .find(|s| s.name == metric)
                .unwrap_or_else(|| panic!("no {metric} in\n{}", page.body))
                .value
                .parse::<u64>()
                .unwrap()
        };
        let (left, right) = (value("shm_left_total"), value("shm_right_total"));
        assert_eq!(left, right, "a torn read:\n{}", page.body);
        seen.insert(left);
    }
    let updates = writer.finish();
    assert!(updates > 0);
    // The scrapes saw the writer's progress, not one frozen value.
    assert!(seen.len() > 1, "every scrape saw {seen:?}");
}

#[test]
fn bad_segments_are_skipped_with_a_comment_and_counted() {
    let p = TestName::prefix("bad");
    let good_name = format!("{p}good");
    let good = Value::<u32>::create(&good_name, 5).unwrap();
    // Another program's memory: no shm-core header at all.
    let garbage = TestName::adopt(format!("{p}garbage"));
    garbage.plant(&[0x5a; 4096], 0o600);
    // Zeros, as a creator leaves them before writing the header (or another program's memory).
    let zeros = TestName::adopt(format!("{p}zeros"));
    zeros.plant(&[0; 4096], 0o600);
    // A segment cut short after its magic bytes.
    let truncated = TestName::adopt(format!("{p}truncated"));
    let whole = Value::<u64>::create(&format!("{p}whole"), 1).unwrap();
    let bytes = fs::read(PathBuf::from("/dev/shm").join(format!("{p}whole"))).unwrap();
    drop(whole);
    truncated.plant(&bytes[..40], 0o600);
    // Two fields whose metric names collide: the first is exported, the second reported.
    let clashing_name = format!("{p}clashing");
    let _clashing = Shared::<Clashing>::create(
        &clashing_name,
        Clashing {
            conns_open: 1,
            conns: Conns { open: 2 },
        },
    )
    .unwrap();
    // More samples than --max-samples allows.
    let big_name = format!("{p}big");
    let _big = Array::<u8>::create(&big_name, &[0; 64]).unwrap();
    // Another user's segment.
    let theirs = TestName::adopt(format!("{p}theirs"));
    let chowned = requires_root("makes another user's segment with chown");
    let _their_segment = chowned.then(|| {
        let v = Value::<u64>::create(&theirs, 9).unwrap();
        chown(theirs.path(), Some(65534), Some(65534)).unwrap();
        v
    });

    let exporter = Exporter::start(&["--prefix", &p, "--max-samples", "32"]);
    let mut skipped = vec![
        (garbage.to_string(), "corrupt"),
        (truncated.to_string(), "corrupt"),
        (zeros.to_string(), "timeout"),
        (big_name.clone(), "too_large"),
    ];
    if chowned {
        skipped.push((theirs.to_string(), "permission_denied"));
    }
    let check = |page: &Page, scrapes: u64| {
        let mut good_expect = Expect::new(&good_name, "u32");
        good_expect.add("shm_value", None, Num::Int(5));
        good_expect.check(page);
        let mut clashing_expect = Expect::new(&clashing_name, "Clashing");
        clashing_expect.add("shm_conns_open", None, Num::Int(1));
        clashing_expect.check(page);
        for (name, kind) in &skipped {
            assert_eq!(page.of(name), vec![], "{}", page.body);
            // A counter across scrapes.
            assert_eq!(page.errors(name, kind), scrapes, "{name}\n{}", page.body);
        }
        assert_eq!(page.errors(&clashing_name, "name_clash"), scrapes);
    };
    for scrapes in 1..=2 {
        let page = exporter.scrape();
        check(&page, scrapes);
        for (name, kind) in &skipped {
            let comment = format!("shm export: skipped `{name}` ({kind}): ");
            assert_eq!(
                page.comments_about(&comment).len(),
                1,
                "no comment {comment:?}\n{}",
                page.body
            );
        }
        let clash = page.comments_about(&format!(
            "shm export: segment `{clashing_name}`: field `conns.open` left out: its metric shm_conns_open is taken"
        ));
        assert_eq!(clash.len(), 1, "{}", page.body);
        assert_eq!(
            page.comments.len(),
            skipped.len() + 1,
            "only these comments:\n{}",
            page.body
        );
        if have("promtool") {
            promtool_accepts(&page.body);
        }
    }
    // OpenMetrics has no comments (the parser refuses them); the counters say it all.
    check(&exporter.scrape_openmetrics(), 3);
    drop(good);
}

/// The byte offset of the header's sequence counter (docs/FORMAT.md): odd while a write is in
/// progress.
const SEQ_OFFSET: u64 = 128;

/// Moves the sequence counter of segment `name` on by one, by hand: from even to odd is what a
/// writer does when it starts a write, from odd to even when it finishes.
fn bump_seq(name: &str) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(PathBuf::from("/dev/shm").join(name))
        .unwrap();
    let mut word = [0u8; 8];
    f.read_exact_at(&mut word, SEQ_OFFSET).unwrap();
    let seq = u64::from_ne_bytes(word) + 1;
    f.write_all_at(&seq.to_ne_bytes(), SEQ_OFFSET).unwrap();
}

/// The byte offset of the header's payload offset word (docs/FORMAT.md).
const PAYLOAD_OFFSET_WORD: u64 = 32;

/// Writes `bytes` at `offset` of the payload of segment `name`, as another process could.
fn poke_payload(name: &str, offset: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(PathBuf::from("/dev/shm").join(name))
        .unwrap();
    let mut word = [0u8; 8];
    f.read_exact_at(&mut word, PAYLOAD_OFFSET_WORD).unwrap();
    f.write_all_at(bytes, u64::from_ne_bytes(word) + offset)
        .unwrap();
}

#[test]
fn an_enum_holding_no_variant_exports_every_state_0_and_says_so() {
    let p = TestName::prefix("badenum");
    let name = format!("{p}slots");
    let slots = Array::<Slot>::create(
        &name,
        &[
            Slot {
                phase: Phase::Serving,
                ..Slot::default()
            },
            Slot {
                phase: Phase::Draining,
                ..Slot::default()
            },
        ],
    )
    .unwrap();
    // Another process writes 7, no variant of `Phase`, into the second element's `phase`.
    let at = std::mem::size_of::<Slot>() + std::mem::offset_of!(Slot, phase);
    poke_payload(&name, at as u64, &[7]);
    assert_eq!(slots[1].phase.load_raw(Ordering::Relaxed), 7);
    assert_eq!(
        slots[0].phase.try_load(Ordering::Relaxed),
        Ok(Phase::Serving)
    );

    let exporter = Exporter::start(&[&name]);
    for round in 1..=2u64 {
        let text = exporter.scrape();
        // Every other sample as the snapshot has it; the unknown number gives all states 0.
        let snap = slots.snapshot();
        let mut e = Expect::new(&name, "Slot");
        for (i, s) in snap.iter().enumerate() {
            let i = i.to_string();
            e.add(
                "shm_served_total",
                Some(&i),
                Num::Int(s.served_total.into()),
            );
            e.add("shm_busy", Some(&i), Num::Int(s.busy.into()));
            let known = slots[i.parse::<usize>().unwrap()]
                .phase
                .try_load(Ordering::Relaxed)
                .ok();
            e.states("shm_phase", Some(&i), known);
        }
        e.check(&text);
        assert_eq!(
            text.comments_about("no variant"),
            vec![format!(
                "shm export: segment `{name}`: field `[1].phase` holds 7, which is no variant of Phase: every state of its state set is 0"
            )],
            "{}",
            text.body
        );
        // Counted, across scrapes.
        assert_eq!(text.errors(&name, "unknown_variant"), round * 2 - 1);
        if have("promtool") {
            promtool_accepts(&text.body);
        }
        let om = exporter.scrape_openmetrics();
        e.check(&om);
        assert_eq!(om.errors(&name, "unknown_variant"), round * 2);
    }
    // Written back to a variant: exported as it, and no longer reported.
    slots[1].phase.store(Phase::Starting, Ordering::Relaxed);
    let text = exporter.scrape();
    expect_slots(&name, &slots.snapshot()).check(&text);
    assert_eq!(text.comments, Vec::<String>::new());
    assert_eq!(text.errors(&name, "unknown_variant"), 4);
}

#[test]
fn a_segment_stuck_mid_write_is_skipped_and_the_rest_exported() {
    let p = TestName::prefix("stuck");
    let good_name = format!("{p}good");
    let _good = Value::<u32>::create(&good_name, 1).unwrap();
    let stuck_name = format!("{p}stuck");
    let stuck = Shared::<Pair>::create(
        &stuck_name,
        Pair {
            left_total: 3,
            right_total: 3,
        },
    )
    .unwrap();
    let exporter = Exporter::start(&["--prefix", &p]);
    let mut good = Expect::new(&good_name, "u32");
    good.add("shm_value", None, Num::Int(1));
    let mut pair = Expect::new(&stuck_name, "Pair");
    pair.add("shm_left_total", None, Num::Int(3));
    pair.add("shm_right_total", None, Num::Int(3));
    pair.check(&exporter.scrape());

    // What a writer stopped in the middle of an update leaves: the lock held by a live thread
    // (this one) and the sequence counter odd. A snapshot waits for it as long as it lasts.
    let guard = stuck.lock().unwrap();
    bump_seq(&stuck_name);
    for scrapes in 1..=3 {
        let page = exporter.scrape();
        good.check(&page);
        assert_eq!(page.of(&stuck_name), vec![], "{}", page.body);
        assert_eq!(page.errors(&stuck_name, "stuck"), scrapes, "{}", page.body);
        assert_eq!(
            page.comments_about(&format!("shm export: skipped `{stuck_name}` (stuck): "))
                .len(),
            1,
            "{}",
            page.body
        );
    }
    // The writer finishes: the read left waiting ends, and a later scrape exports the segment.
    bump_seq(&stuck_name);
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = exporter.scrape();
        if !page.of(&stuck_name).is_empty() {
            pair.check(&page);
            good.check(&page);
            break;
        }
        assert!(Instant::now() < deadline, "still skipped:\n{}", page.body);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn named_segments_that_come_and_go() {
    let p = TestName::prefix("comego");
    let name = format!("{p}late");
    let exporter = Exporter::start(&[&name]);

    let page = exporter.scrape();
    assert_eq!(page.of(&name), vec![]);
    assert_eq!(page.errors(&name, "not_found"), 1);
    assert_eq!(
        page.comments_about(&format!("shm export: skipped `{name}` (not_found): "))
            .len(),
        1,
        "{}",
        page.body
    );

    // It appears: exported, no new error.
    let v = Value::<u8>::create(&name, 200).unwrap();
    let page = exporter.scrape();
    let mut e = Expect::new(&name, "u8");
    e.add("shm_value", None, Num::Int(200));
    e.check(&page);
    assert_eq!(page.errors(&name, "not_found"), 1);
    assert_eq!(page.comments, Vec::<String>::new());

    // It goes away: reported again.
    drop(v);
    let page = exporter.scrape();
    assert_eq!(page.of(&name), vec![]);
    assert_eq!(page.errors(&name, "not_found"), 2);
}

#[test]
fn all_segments_mode_reports_broken_segments_not_foreign_objects() {
    let p = TestName::prefix("all");
    let good_name = format!("{p}good");
    let _good = Value::<i16>::create(&good_name, -3).unwrap();
    let foreign = TestName::adopt(format!("{p}foreign"));
    foreign.plant(b"another program's shared memory", 0o600);
    let zeros = TestName::adopt(format!("{p}zeros"));
    zeros.plant(&[0; 4096], 0o600);
    let broken = TestName::adopt(format!("{p}broken"));
    let whole = Value::<u64>::create(&format!("{p}whole"), 1).unwrap();
    let bytes = fs::read(PathBuf::from("/dev/shm").join(format!("{p}whole"))).unwrap();
    drop(whole);
    broken.plant(&bytes[..40], 0o600);

    let exporter = Exporter::start(&[]);
    let page = exporter.scrape();
    let mut e = Expect::new(&good_name, "i16");
    e.add("shm_value", None, Num::Int(-3));
    e.check(&page);
    for other in [&foreign, &zeros] {
        assert_eq!(page.comments_about(other).len(), 0, "{}", page.body);
        assert!(
            !page.body.contains(&format!("segment=\"{}\"", &**other)),
            "{}",
            page.body
        );
    }
    assert_eq!(
        page.comments_about(&format!("shm export: skipped `{}` (corrupt): ", &*broken))
            .len(),
        1,
        "{}",
        page.body
    );
    assert_eq!(page.errors(&broken, "corrupt"), 1);
}

#[test]
fn scrapes_run_side_by_side_while_segments_vanish() {
    let p = TestName::prefix("churn");
    let exporter = Exporter::start(&["--prefix", &p]);
    let churn = {
        let p = p.clone();
        Background::spawn(move |stop| {
            let mut made = 0u64;
            // Bounded, whatever the scrapers do.
            for i in 0..5000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("{p}{}", i % 4);
                // Each is removed when dropped; `TestName` also covers a panic in between.
                let guard = TestName::adopt(name.clone());
                if let Ok(v) = Value::<u64>::create(&name, i) {
                    made += 1;
                    drop(v);
                }
                drop(guard);
            }
            made
        })
    };
    let scrapers: Vec<_> = (0..4)
        .map(|_| {
            let url = exporter.url("/metrics");
            std::thread::spawn(move || {
                let mut pages = Vec::new();
                for _ in 0..15 {
                    let reply = get(&url, None);
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    pages.push(Page::parse(&reply.body, false));
                }
                pages
            })
        })
        .collect();
    let pages: Vec<Page> = scrapers
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert!(churn.finish() > 0);

    for page in &pages {
        for s in &page.samples {
            if s.name == "shm_export_errors_total" {
                // A segment seen in the directory and gone when opened; nothing else.
                assert_eq!(s.labels["kind"], "not_found", "{}", page.body);
            } else if s.name == "shm_value" {
                assert!(s.labels["segment"].starts_with(&p));
            }
        }
    }
    if have("promtool") {
        for page in pages.iter().step_by(10) {
            promtool_accepts(&page.body);
        }
    }
    let mut exporter = exporter;
    assert!(exporter.is_running());
    // Still answering.
    exporter.scrape();
}

#[test]
fn prometheus_scrapes_the_exporter() {
    if !(have("prometheus") && have("promtool")) {
        return;
    }
    let p = TestName::prefix("prom");
    let name = format!("{p}web");
    let web = Shared::<Web>::create(
        &name,
        Web {
            requests_total: 17,
            load: 0.25,
            grade: 'A',
            phase: Phase::Serving,
            latency: [1, 2, 3],
            ..Web::default()
        },
    )
    .unwrap();
    let exporter = Exporter::start(&[&name]);
    let mut prometheus = Prometheus::start(&exporter.addr);

    let selector = format!("{{segment=\"{name}\"}}");
    let labels = prometheus.wait_for(&format!("shm_requests_total{selector}"), "17");
    assert_eq!(labels["type"], "Web");
    assert_eq!(labels["job"], "shm");
    prometheus.wait_for(&format!("shm_load{selector}"), "0.25");
    prometheus.wait_for(
        &format!("shm_latency{{segment=\"{name}\",index=\"2\"}}"),
        "3",
    );
    let info = prometheus.wait_for(&format!("shm_grade_info{selector}"), "1");
    assert_eq!(info["value"], "A");
    // The enum, a state set: the variant it holds is 1, the others 0.
    let state = |variant: &str| format!("shm_phase{{segment=\"{name}\",shm_phase=\"{variant}\"}}");
    prometheus.wait_for(&state("Serving"), "1");
    prometheus.wait_for(&state("Starting"), "0");
    prometheus.wait_for(&state("Draining"), "0");
    prometheus.wait_for(&format!("up{{instance=\"{}\"}}", exporter.addr), "1");

    // A new value reaches Prometheus with a later scrape.
    web.requests_total.store(42, Ordering::Relaxed);
    web.phase.store(Phase::Draining, Ordering::Relaxed);
    prometheus.wait_for(&format!("shm_requests_total{selector}"), "42");
    prometheus.wait_for(&state("Draining"), "1");
    prometheus.wait_for(&state("Serving"), "0");
}
