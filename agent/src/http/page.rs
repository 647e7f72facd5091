//! The job's page at `/`: one HTML document with its style and script
//! embedded in the binary (no build step, nothing fetched from elsewhere).
//! The script polls the JSON API every second and draws the job graph,
//! checkpoint history and result charts as SVG.

use super::Reply;

const HTML: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/style.css");
const JS: &str = include_str!("page/app.js");

/// The page, with its style and script inlined.
pub(super) fn index() -> Reply {
    let body = HTML.replace("/*STYLE*/", CSS).replace("/*SCRIPT*/", JS);
    Reply { status: 200, content_type: "text/html; charset=utf-8", body: body.into_bytes() }
}
