//! Serving a built single-page web client from `ROOKERY_STATIC_DIR`: its
//! files at `/`, and `index.html` for every other GET path that is not the
//! API, media, docs or operations, so client-side routes such as
//! `/profile/2` load the app. Without the setting, `/` describes the service.

use actix_files::{NamedFile, PathBufWrap};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::{self, ApiError};
use crate::http::state::AppState;

const INDEX: &str = "index.html";
/// The entry page names the current assets: browsers revalidate it each time
/// (cheaply, by ETag), so a new deployment shows at once.
const INDEX_CACHE: &str = "no-cache";
/// Other files may be reused for an hour, then revalidated by ETag or date.
const ASSET_CACHE: &str = "public, max-age=3600";

/// Paths that belong to the server, never to the client's router: exact, or
/// followed by `/`.
const RESERVED: [&str; 7] = [
    "/api",
    "/media",
    "/docs",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDescription {
    #[schema(example = "rookery")]
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    /// Where to go next, by name: `docs`, `openapi`, `api`, `microblog_api`, `health`.
    #[schema(value_type = Object)]
    pub links: serde_json::Value,
}

#[utoipa::path(get, path = "/", tag = "ops",
    responses((status = 200, description = "With ROOKERY_STATIC_DIR: the web client's index.html. Without: a short description of the service", body = ServiceDescription)))]
pub async fn root(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.settings.http.static_dir.as_deref() {
        Some(dir) => serve(&req, &dir.join(INDEX), INDEX_CACHE),
        None => Ok(HttpResponse::Ok().json(ServiceDescription {
            name: "rookery",
            version: env!("CARGO_PKG_VERSION"),
            description: env!("CARGO_PKG_DESCRIPTION"),
            links: serde_json::json!({
                "docs": "/docs/",
                "openapi": "/openapi.json",
                "api": "/api/v1",
                "microblog_api": "/api",
                "health": "/healthz",
            }),
        })),
    }
}

/// The app's fallback for paths no route matches: a file of the client, its
/// `index.html`, or the native 404.
pub async fn fallback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(dir) = state.settings.http.static_dir.as_deref() else {
        return error::not_found(req).await;
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_reserved(req.path()) {
        return error::not_found(req).await;
    }
    // The traversal-safe parse the file service itself uses; a path it
    // refuses (dot files, `..` games) simply gets the app.
    let file = PathBufWrap::parse_path(req.path(), false)
        .ok()
        .map(|p| dir.join(p))
        .filter(|p| p.is_file());
    match file {
        Some(path) if !path.ends_with(INDEX) => serve(&req, &path, ASSET_CACHE),
        _ => serve(&req, &dir.join(INDEX), INDEX_CACHE),
    }
}

fn is_reserved(path: &str) -> bool {
    RESERVED.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Content type from the extension, ETag and Last-Modified (so conditional
/// requests get 304), ranges, and our cache policy.
fn serve(
    req: &HttpRequest,
    path: &std::path::Path,
    cache: &'static str,
) -> Result<HttpResponse, ApiError> {
    let file = NamedFile::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ApiError::NotFound(format!("no route for {} {}", req.method(), req.path()))
        }
        _ => ApiError::Internal(format!("reading {}: {e}", path.display())),
    })?;
    let mut res = file.disable_content_disposition().into_response(req);
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_are_reserved_by_segment() {
        for path in [
            "/api",
            "/api/tweets",
            "/api/v1/feed",
            "/media/m/x.jpg",
            "/docs",
            "/docs/",
            "/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(is_reserved(path), "{path}");
        }
        for path in [
            "/",
            "/profile/2",
            "/apis",
            "/mediafile",
            "/app.js",
            "/healthz2",
        ] {
            assert!(!is_reserved(path), "{path}");
        }
    }
}
