//! The console's static files, built into the binary (`include_bytes!`): the console works with no network access
//! and loads nothing from elsewhere. `web/vendor/` holds the one third-party file set (uPlot), pinned by
//! `web/vendor/package-lock.json` and checked against it by `scripts/console-vendor.sh` in CI.

use http::{header, HeaderValue, Response};

use crate::http::{full, Body};

/// One served file.
pub struct Asset {
    /// Its path under `/assets/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $file:literal, $ct:literal;)*) => {
        /// Every file under `/assets/`.
        pub const ALL: &[Asset] = &[$(Asset { name: $name, content_type: $ct, bytes: include_bytes!($file) },)*];
    };
}

assets! {
    "console.css" => "web/console.css", "text/css; charset=utf-8";
    "console.js" => "web/console.js", "text/javascript; charset=utf-8";
    "uPlot.iife.min.js" => "web/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8";
    "uPlot.min.css" => "web/vendor/uPlot.min.css", "text/css; charset=utf-8";
    "pages/today.js" => "web/pages/today.js", "text/javascript; charset=utf-8";
    "pages/rules.js" => "web/pages/rules.js", "text/javascript; charset=utf-8";
    "pages/cards.js" => "web/pages/cards.js", "text/javascript; charset=utf-8";
    "pages/fund.js" => "web/pages/fund.js", "text/javascript; charset=utf-8";
    "pages/clearing.js" => "web/pages/clearing.js", "text/javascript; charset=utf-8";
    "pages/reports.js" => "web/pages/reports.js", "text/javascript; charset=utf-8";
    "pages/audit.js" => "web/pages/audit.js", "text/javascript; charset=utf-8";
}

pub fn find(name: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.name == name)
}

/// The file, cacheable for an hour (a new release changes the binary, and a reload picks it up).
pub fn response(a: &Asset) -> Response<Body> {
    let mut resp = Response::new(full(a.bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    resp
}
