//! The admins' JSON endpoints: API keys and shared links, listed, made and revoked from the
//! dashboard. Each needs a live session of an admin and the session's CSRF token in
//! `X-Tally-CSRF` (a form or script of another origin can send the cookie but cannot know the
//! token); anything else is a 4xx `{"error": "one line"}`.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::{self, Access, Viewer};
use crate::api::keystore::Revocation;
use crate::http::{self, Resp};
use crate::state::App;

/// An admin endpoint, relative to the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/admin/keys`.
    Keys,
    /// `/admin/keys/<id>/revoke`.
    RevokeKey(String),
    /// `/admin/links`.
    Links,
    /// `/admin/links/<id>/revoke`.
    RevokeLink(String),
}

/// The endpoint at `path`, if it is one.
pub fn endpoint_of(path: &str) -> Option<Endpoint> {
    match path {
        "/admin/keys" => return Some(Endpoint::Keys),
        "/admin/links" => return Some(Endpoint::Links),
        _ => {}
    }
    let id_ok = |id: &str| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    if let Some(id) = path
        .strip_prefix("/admin/keys/")
        .and_then(|r| r.strip_suffix("/revoke"))
    {
        return id_ok(id).then(|| Endpoint::RevokeKey(id.to_string()));
    }
    if let Some(id) = path
        .strip_prefix("/admin/links/")
        .and_then(|r| r.strip_suffix("/revoke"))
    {
        return id_ok(id).then(|| Endpoint::RevokeLink(id.to_string()));
    }
    None
}

/// What the endpoints need of the request.
pub struct AdminCtx<'a> {
    /// The shared state.
    pub app: &'a App,
    /// Accounts and links.
    pub access: &'a Access,
    /// `base_path` or `""`.
    pub base: &'a str,
    /// Whether the request came over https.
    pub https: bool,
}

fn reply(status: StatusCode, body: Value) -> Resp {
    http::no_store(status, http::JSON, body.to_string())
}

fn error(status: StatusCode, message: &str) -> Resp {
    http::json_error(status, message)
}

/// `2026-11-26T18:00:00Z`.
fn iso(unix: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(unix), 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The admin behind the request, or the refusal.
async fn admin_of(ctx: &AdminCtx<'_>, headers: &hyper::HeaderMap) -> Result<Viewer, Resp> {
    let Some(token) = access::session_cookie(headers) else {
        return Err(error(StatusCode::UNAUTHORIZED, "not signed in"));
    };
    let viewer = match ctx.access.session(&token, crate::time::now_unix()).await {
        Ok(Some(v)) => v,
        Ok(None) => return Err(error(StatusCode::UNAUTHORIZED, "not signed in")),
        Err(_) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the sessions cannot be read right now",
            ));
        }
    };
    let csrf = access::header_text(headers, access::CSRF_HEADER).unwrap_or("");
    if !access::secret::same(csrf, &viewer.csrf) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "missing or wrong X-Tally-CSRF header",
        ));
    }
    if !viewer.admin {
        return Err(error(StatusCode::FORBIDDEN, "only admins may do this"));
    }
    Ok(viewer)
}

/// Answers an admin endpoint.
pub async fn handle<B>(ctx: &AdminCtx<'_>, endpoint: Endpoint, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let allowed = match endpoint {
        Endpoint::Keys | Endpoint::Links => "GET, POST",
        _ => "POST",
    };
    let method_ok = match endpoint {
        Endpoint::Keys | Endpoint::Links => {
            parts.method == Method::GET || parts.method == Method::POST
        }
        _ => parts.method == Method::POST,
    };
    if !method_ok {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {} is not allowed here", parts.method),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        return r;
    }
    if let Err(r) = admin_of(ctx, &parts.headers).await {
        return r;
    }
    let body = if parts.method == Method::POST {
        match super::read_body(body).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        Bytes::new()
    };
    let now = crate::time::now_unix();
    let result = match (endpoint, parts.method == Method::GET) {
        (Endpoint::Keys, true) => list_keys(ctx).await,
        (Endpoint::Keys, false) => create_key(ctx, &body, now).await,
        (Endpoint::RevokeKey(id), _) => revoke_key(ctx, &id, now).await,
        (Endpoint::Links, true) => list_links(ctx, &parts.headers).await,
        (Endpoint::Links, false) => create_link(ctx, &parts.headers, &body, now).await,
        (Endpoint::RevokeLink(id), _) => revoke_link(ctx, &id, now).await,
    };
    result.unwrap_or_else(|r| r)
}

type Answer = Result<Resp, Resp>;

fn store_failed(e: impl std::fmt::Display) -> Resp {
    tracing::warn!(error = %e, "an admin request could not reach the database");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the database cannot be reached right now; try again later",
    )
}

// The error is the response itself, made once per request: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Resp> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("the body is not the expected JSON: {e}"),
        )
    })
}

#[allow(clippy::result_large_err)]
fn api<'a>(ctx: &AdminCtx<'a>) -> Result<&'a crate::api::Api, Resp> {
    ctx.app
        .api
        .as_ref()
        .ok_or_else(|| error(StatusCode::SERVICE_UNAVAILABLE, "the API is not running"))
}

async fn list_keys(ctx: &AdminCtx<'_>) -> Answer {
    let keys = api(ctx)?
        .keys()
        .table()
        .list()
        .await
        .map_err(store_failed)?;
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "sites": k.sites,
                "created": iso(k.created), "revoked": k.revoked.map(iso),
            })
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({ "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    name: String,
    sites: Vec<u32>,
}

async fn create_key(ctx: &AdminCtx<'_>, body: &[u8], now: u32) -> Answer {
    let new: NewKey = parse(body)?;
    if let Some(unknown) = new
        .sites
        .iter()
        .find(|id| ctx.app.config.site(**id).is_none())
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("site {unknown} is not configured"),
        ));
    }
    match api(ctx)?
        .keys()
        .table()
        .create(&new.sites, &new.name, now)
        .await
    {
        Ok((info, key)) => Ok(reply(
            StatusCode::CREATED,
            json!({ "id": info.id, "key": key }),
        )),
        Err(crate::api::keystore::KeyError::Invalid(m)) => Err(error(StatusCode::BAD_REQUEST, &m)),
        Err(e) => Err(store_failed(e)),
    }
}

async fn revoke_key(ctx: &AdminCtx<'_>, id: &str, now: u32) -> Answer {
    let keys = api(ctx)?.keys();
    match keys.table().revoke(id, now).await.map_err(store_failed)? {
        Revocation::Revoked | Revocation::Already(_) => {
            // This collector refuses the key at once, as the page says; the others at their
            // next refresh. A failed read leaves that to the background refresh.
            if let Err(e) = keys.refresh().await {
                tracing::warn!(error = %e, "re-reading the API keys after a revocation failed");
            }
            Ok(reply(StatusCode::OK, json!({ "revoked": true })))
        }
        Revocation::Unknown => Err(error(StatusCode::NOT_FOUND, "no API key with this id")),
    }
}

/// The address of a shared link: under `public_url` when configured, else under the origin the
/// admin's request came to.
fn share_url(ctx: &AdminCtx<'_>, headers: &hyper::HeaderMap, token: &str) -> String {
    if let Some(public) = ctx.app.config.public_url.as_deref() {
        return format!("{}/share/{token}", public.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| ctx.app.config.listen.to_string());
    let scheme = if ctx.https { "https" } else { "http" };
    format!("{scheme}://{host}{}/share/{token}", ctx.base)
}

async fn list_links(ctx: &AdminCtx<'_>, headers: &hyper::HeaderMap) -> Answer {
    let links = ctx.access.links().await.map_err(store_failed)?;
    let links: Vec<Value> = links
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id, "site": l.site, "name": l.name,
                "protected": l.password_hash.is_some(),
                "url": l.revoked.is_none().then(|| share_url(ctx, headers, &l.token)),
                "created": iso(l.created), "revoked": l.revoked.map(iso),
            })
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({ "links": links })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    site: u32,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: Option<String>,
}

async fn create_link(
    ctx: &AdminCtx<'_>,
    headers: &hyper::HeaderMap,
    body: &[u8],
    now: u32,
) -> Answer {
    let new: NewLink = parse(body)?;
    if ctx.app.config.site(new.site).is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("site {} is not configured", new.site),
        ));
    }
    let hash = match new.password {
        None => None,
        Some(p) => {
            let hashed = tokio::task::spawn_blocking(move || access::secret::hash_password(&p))
                .await
                .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "hashing failed"))?;
            Some(hashed.map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))?)
        }
    };
    match ctx
        .access
        .tables()
        .create_link(new.site, &new.name, hash, now)
        .await
    {
        Ok(link) => Ok(reply(
            StatusCode::CREATED,
            json!({ "id": link.id, "url": share_url(ctx, headers, &link.token) }),
        )),
        Err(access::store::StoreError::Invalid(m)) => Err(error(StatusCode::BAD_REQUEST, &m)),
        Err(e) => Err(store_failed(e)),
    }
}

async fn revoke_link(ctx: &AdminCtx<'_>, id: &str, now: u32) -> Answer {
    if ctx
        .access
        .tables()
        .revoke_link(id, now)
        .await
        .map_err(store_failed)?
    {
        // As for keys: refused here at once, elsewhere within the refresh time.
        if let Err(e) = ctx.access.refresh().await {
            tracing::warn!(error = %e, "re-reading the accounts after a revocation failed");
        }
        Ok(reply(StatusCode::OK, json!({ "revoked": true })))
    } else {
        Err(error(StatusCode::NOT_FOUND, "no shared link with this id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_of("/admin/keys"), Some(Endpoint::Keys));
        assert_eq!(endpoint_of("/admin/links"), Some(Endpoint::Links));
        assert_eq!(
            endpoint_of("/admin/keys/0123abcd/revoke"),
            Some(Endpoint::RevokeKey("0123abcd".into()))
        );
        assert_eq!(
            endpoint_of("/admin/links/ff00/revoke"),
            Some(Endpoint::RevokeLink("ff00".into()))
        );
        for bad in [
            "/admin",
            "/admin/keys/",
            "/admin/keys//revoke",
            "/admin/keys/a/b/revoke",
            "/admin/keys/x%20y/revoke",
            "/admin/links/1/revoke/",
        ] {
            assert_eq!(endpoint_of(bad), None, "{bad}");
        }
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }
}
