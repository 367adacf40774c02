//! `admin.cors`: answers preflight requests and adds `Access-Control-Allow-*` to answers for origins in
//! `allow_origins` (`*` allows any, but never together with credentials, as browsers require). An origin not
//! listed gets no CORS headers, so the browser refuses the page's script the answer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::config::schema::CorsConfig;

pub struct Cors {
    origins: Vec<String>,
    any: bool,
    methods: HeaderValue,
    headers: HeaderValue,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

fn joined(items: &[String], default: &str) -> HeaderValue {
    let text = if items.is_empty() {
        default.to_owned()
    } else {
        items.join(", ")
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Cors {
    /// `None` when CORS is off.
    pub fn new(c: &CorsConfig) -> Option<Self> {
        c.enabled.then(|| Self {
            origins: c.allow_origins.clone(),
            any: c.allow_origins.iter().any(|o| o == "*"),
            methods: joined(&c.allow_methods, "GET, POST, PUT, DELETE"),
            headers: joined(&c.allow_headers, "authorization, content-type"),
            expose: (!c.expose_headers.is_empty()).then(|| joined(&c.expose_headers, "")),
            credentials: c.allow_credentials,
            max_age: HeaderValue::from(c.max_age),
        })
    }

    fn allowed(&self, origin: &str) -> bool {
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    fn decorate(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        if self.any && !self.credentials {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.append(header::VARY, HeaderValue::from_static("origin"));
        }
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(e) = &self.expose {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

pub async fn cors(State(c): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| c.allowed(o)))
        .cloned();
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        c.decorate(&origin, h);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, c.methods.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, c.headers.clone());
        h.insert(header::ACCESS_CONTROL_MAX_AGE, c.max_age.clone());
        return r;
    }
    let mut r = next.run(req).await;
    c.decorate(&origin, r.headers_mut());
    r
}
