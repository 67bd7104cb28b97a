//! The HTTP server: accepts connections, routes requests, shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::ingest::response::{self, Resp};
use crate::ingest::track;
use crate::privacy::FullIp;
use crate::state::App;
use crate::web;

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(route(&app, req, peer).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Client disconnects mid-request are routine; nothing to report.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
}

/// Dispatches one request.
async fn route(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let max_uri = app.config.limits.max_uri_bytes;
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > max_uri {
        return track::uri_too_long(app, max_uri);
    }
    let path = req.uri().path();
    let method = req.method().clone();
    match (&method, path) {
        (&Method::GET | &Method::POST, "/matomo.php" | "/piwik.php") => {
            let origin = req.headers().get(hyper::header::ORIGIN).cloned();
            let mut resp = track::handle(app, req, FullIp::of_peer(peer.ip())).await;
            response::cors(&mut resp, origin.as_ref(), &app.config);
            resp
        }
        (&Method::OPTIONS, "/matomo.php" | "/piwik.php") => {
            response::preflight(req.headers(), &app.config)
        }
        (&Method::GET | &Method::HEAD, "/tally.js" | "/matomo.js" | "/piwik.js") => {
            web::assets::tracker(req.headers())
        }
        (&Method::GET | &Method::HEAD, "/optout") => web::optout::page(app, &req),
        (&Method::POST, "/optout") => {
            web::optout::submit(app, req, FullIp::of_peer(peer.ip())).await
        }
        (&Method::GET, "/health") => response::text(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/metrics") => response::text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics.render(),
        ),
        _ => response::rejected(&crate::ingest::reject::Reject::new(
            StatusCode::NOT_FOUND,
            "not found",
        )),
    }
}
