//! The group profile web page: HTML, JavaScript and CSS embedded in the binary at build time
//! and served at `/`, so the page works offline and needs no build step. The page reads the
//! JSON API under `/api/` of the same server.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file of the page.
struct Asset {
    /// The URL path below `/`.
    path: &'static str,
    /// The `Content-Type` header value.
    content_type: &'static str,
    /// The file contents.
    body: &'static str,
}

/// Every file of the page. `index.html` is also served at `/`.
const ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/app.js"),
    },
    Asset {
        path: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/api.js"),
    },
    Asset {
        path: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/charts.js"),
    },
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/style.css"),
    },
];

/// The page's Content-Security-Policy: scripts, styles and API calls from this server only.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// Returns a router that serves the page at `/` and its files by name. Merge it into the
/// server's router next to the `/api/` routes.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new().route("/", get(|| async { respond(&ASSETS[0]) }));
    for asset in ASSETS {
        router = router.route(&format!("/{}", asset.path), get(move || async move { respond(asset) }));
    }
    router
}

fn respond(asset: &'static Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_referenced_by_index_are_embedded() {
        let index = ASSETS[0].body;
        for asset in &ASSETS[1..] {
            let referenced = index.contains(asset.path)
                || ASSETS.iter().any(|other| other.body.contains(&format!("./{}", asset.path)));
            assert!(referenced, "{} is embedded but nothing loads it", asset.path);
        }
        for name in ["app.js", "style.css"] {
            assert!(ASSETS.iter().any(|asset| asset.path == name), "index.html loads {name}, which is not embedded");
        }
    }
}
