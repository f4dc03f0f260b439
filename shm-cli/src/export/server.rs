//! HTTP for `shm export`, with `tiny_http`: `GET /metrics` in the format the `Accept` header
//! prefers, 404 elsewhere; a few worker threads, so scrapes run side by side.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};

use super::{Exporter, Format};

/// Threads answering requests: scrapes in parallel beyond this wait their turn.
const WORKERS: usize = 4;

/// Listens on `listen` and answers until the process is killed. Prints the address it listens
/// on (useful with port 0) as one line on stdout.
pub fn serve(listen: &str, exporter: Exporter) -> Result<(), String> {
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "shm export: serving http://{addr}/metrics");
        let _ = out.flush();
    }
    exit_on_panic();
    let exporter = Arc::new(exporter);
    loop {
        // tiny_http's accept thread stops at the first error `accept` returns (out of file
        // descriptors, say) and hands it to a `recv`. The listener stays open here, so a new
        // server takes over the same socket and the connections waiting in its backlog.
        let error = match listener.try_clone() {
            Ok(l) => match Server::from_listener(l, None) {
                Ok(server) => run_workers(Arc::new(server), &exporter),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        crate::out::error(&format!(
            "export: accepting connections on {addr} failed ({error}); accepting again"
        ));
        thread::sleep(Duration::from_millis(200));
    }
}

/// Answers `server`'s requests on [`WORKERS`] threads until its accept thread stops; returns
/// why it stopped.
fn run_workers(server: Arc<Server>, exporter: &Arc<Exporter>) -> String {
    let (stopped, why) = std::sync::mpsc::channel();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let server = Arc::clone(&server);
            let exporter = Arc::clone(exporter);
            let stopped = stopped.clone();
            thread::spawn(move || loop {
                match server.recv() {
                    Ok(request) => answer(request, &exporter),
                    Err(e) => {
                        let _ = stopped.send(e.to_string());
                        return;
                    }
                }
            })
        })
        .collect();
    drop(stopped);
    let error = why
        .recv()
        .unwrap_or_else(|_| "the request threads ended".to_owned());
    // The other workers wait in `recv`: one unblock each.
    for _ in 1..WORKERS {
        server.unblock();
    }
    for w in workers {
        let _ = w.join();
    }
    error
}

/// A panic in the exporter (its own bug, or one in a thread of the HTTP library) would leave a
/// server that no longer accepts or answers; it ends the process instead, with status 1, so a
/// supervisor restarts it.
fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        crate::out::error("export: a thread panicked; exiting");
        std::process::exit(1);
    }));
}

fn answer(request: Request, exporter: &Exporter) {
    let path = request.url().split('?').next().unwrap_or("");
    let response = if path != "/metrics" {
        text(404, "Not found: the metrics are at /metrics\n")
    } else if !matches!(request.method(), Method::Get | Method::Head) {
        text(405, "Only GET and HEAD\n").with_header(header("Allow", "GET, HEAD"))
    } else {
        let accept = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Accept"))
            .map(|h| h.value.as_str().to_owned());
        let format = negotiate(accept.as_deref());
        Response::from_string(exporter.scrape(format))
            .with_header(header("Content-Type", format.content_type()))
    };
    // A scraper that went away needs no answer.
    let _ = request.respond(response);
}

fn text(status: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn header(field: &str, value: &str) -> Header {
    // Both are constants of this file, valid ASCII.
    Header::from_bytes(field.as_bytes(), value.as_bytes()).expect("a valid header")
}

/// The format an `Accept` header prefers: OpenMetrics if `application/openmetrics-text` has the
/// highest quality among the types offered (ties go to the one listed first), else the text
/// format 0.0.4, which is also the answer to no `Accept`, `*/*` or only types not offered.
pub fn negotiate(accept: Option<&str>) -> Format {
    let mut best: Option<(f64, Format)> = None;
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0;
        let mut version = None;
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => q = value.parse().unwrap_or(0.0),
                "version" => version = Some(value.to_owned()),
                _ => {}
            }
        }
        let format = match (media.as_str(), version.as_deref()) {
            // What is written is valid in both OpenMetrics versions Prometheus asks for.
            ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => Format::OpenMetrics,
            ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => Format::Text,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::Text, |(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        // Prometheus 2.x
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(negotiate(Some("*/*")), Format::Text);
        assert_eq!(negotiate(Some("application/json")), Format::Text);
        assert_eq!(
            negotiate(Some("text/plain;q=0.9, application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some(
                "application/openmetrics-text; q=0.2, text/plain; version=0.0.4"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text; version=\"1.0.0\"")),
            Format::OpenMetrics
        );
    }
}
