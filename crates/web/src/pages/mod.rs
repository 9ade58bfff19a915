//! The HTML face: the analysts' dashboard, the ISP portal and the public self-check page.
//!
//! Everything is rendered on the server: pages are plain HTML with charts as inline SVG, so every
//! view works without JavaScript (there is none), loads nothing from elsewhere and can be saved or
//! printed as it is. A view's whole state (language, time range, ISP, device type, botnet) is in
//! its URL, and every table and chart can be downloaded as CSV from the same URL with
//! `format=csv&table=ID`.

pub mod botnets;
pub mod check;
pub mod dashboard;
pub mod data;
pub mod portal;
pub mod session;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use botscope_model::csv::CsvWriter;

/// Languages the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語
    Ja,
    /// English
    En,
}

impl Lang {
    /// `?lang=` first, then the browser's Accept-Language, then English.
    pub fn choose(asked: Option<&str>, headers: &HeaderMap) -> Lang {
        match asked {
            Some("ja") => return Lang::Ja,
            Some("en") => return Lang::En,
            _ => {}
        }
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        if first.starts_with("ja") { Lang::Ja } else { Lang::En }
    }

    /// The code in URLs and `lang` attributes.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// One of two texts.
    pub fn pick<'a>(self, en: &'a str, ja: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
}

/// The words for a server's latest liveness verdict.
pub fn liveness_word(alive: Option<bool>, lang: Lang) -> &'static str {
    match alive {
        Some(true) => lang.pick("alive", "稼働中"),
        Some(false) => lang.pick("dead", "停止"),
        None => lang.pick("not probed", "未確認"),
    }
}

/// A drawing with its caption (charts of tables get theirs from [`Page::respond`]).
pub fn figure(svg: String, caption: &str) -> String {
    format!("<figure class=\"chart\">{svg}<figcaption>{}</figcaption></figure>", esc(caption))
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// A table cell.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number (right-aligned; charts read these).
    Num(f64),
    /// Text linking somewhere.
    Link(String, String),
}

impl Cell {
    fn plain(&self) -> String {
        match self {
            Cell::Text(text) | Cell::Link(text, _) => text.clone(),
            Cell::Num(n) => number(*n),
        }
    }

    fn value(&self) -> f64 {
        match self {
            Cell::Num(n) => *n,
            _ => 0.0,
        }
    }
}

/// A number as people read it: integers without a fraction, others to two places.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n:.2}") }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::Text(text.to_string())
    }
}
impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::Text(text)
    }
}
impl From<u64> for Cell {
    fn from(n: u64) -> Cell {
        Cell::Num(n as f64)
    }
}
impl From<usize> for Cell {
    fn from(n: usize) -> Cell {
        Cell::Num(n as f64)
    }
}
impl From<f64> for Cell {
    fn from(n: f64) -> Cell {
        Cell::Num(n)
    }
}

/// A table: shown as HTML, downloadable as CSV, and the data of a chart.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its id in the page (and the `table=` of its CSV link).
    pub id: &'static str,
    /// Its caption.
    pub caption: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(id: &'static str, caption: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            id,
            caption: caption.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table as CSV, through the one writer every download uses (botscope_model::csv).
    pub fn csv(&self) -> String {
        let mut csv = CsvWriter::with_header(&self.columns);
        for row in &self.rows {
            for cell in row {
                match cell {
                    Cell::Text(text) | Cell::Link(text, _) => csv.text(text),
                    Cell::Num(n) => csv.number(*n),
                };
            }
            csv.end_row();
        }
        csv.finish()
    }

    fn html(&self, csv_href: &str, lang: Lang) -> String {
        let mut out = format!("<div class=\"table-wrap\"><table id=\"t-{}\"><caption>{}", self.id, esc(&self.caption));
        let _ = write!(out, " <a class=\"csv\" href=\"{}\">{}</a>", esc(csv_href), lang.pick("CSV", "CSVで保存"));
        out.push_str("</caption><thead><tr>");
        for column in &self.columns {
            let _ = write!(out, "<th scope=\"col\">{}</th>", esc(column));
        }
        out.push_str("</tr></thead><tbody>");
        if self.rows.is_empty() {
            let _ = write!(
                out,
                "<tr><td colspan=\"{}\" class=\"empty\">{}</td></tr>",
                self.columns.len().max(1),
                lang.pick("Nothing in this range.", "この条件では該当がありません。")
            );
        }
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                match cell {
                    Cell::Text(text) => {
                        let _ = write!(out, "<td>{}</td>", esc(text));
                    }
                    Cell::Num(n) => {
                        let _ = write!(out, "<td class=\"num\">{}</td>", number(*n));
                    }
                    Cell::Link(text, href) => {
                        let _ = write!(out, "<td><a href=\"{}\">{}</a></td>", esc(href), esc(text));
                    }
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></div>");
        out
    }
}

/// How a chart draws its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// One bar per row (first numeric column).
    Bars,
    /// One line per numeric column over the rows.
    Lines,
}

/// One block of a page.
pub enum Block {
    /// Raw, already escaped HTML.
    Html(String),
    /// A table.
    Table(Table),
    /// A chart of a table, with the table under it for those who cannot see the chart.
    Chart(ChartKind, Table),
}

/// The view's state, as read from the query string; it is written back into every link.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// Query pairs that make up the view (lang and filters), in a stable order.
    pub pairs: BTreeMap<String, String>,
}

impl ViewState {
    /// A link to `path` with this state, `changes` set (an empty value removes the key).
    pub fn href(&self, path: &str, changes: &[(&str, &str)]) -> String {
        let mut pairs = self.pairs.clone();
        for (key, value) in changes {
            if value.is_empty() {
                pairs.remove(*key);
            } else {
                pairs.insert(key.to_string(), value.to_string());
            }
        }
        if pairs.is_empty() {
            return path.to_string();
        }
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect();
        format!("{path}?{}", query.join("&"))
    }
}

/// A page on its way out.
pub struct Page {
    /// Which navigation entry it is (its path).
    pub nav: &'static str,
    /// Its own path (for links that change the view).
    pub path: String,
    /// Title (also the first heading).
    pub title: String,
    /// Language.
    pub lang: Lang,
    /// The view's state.
    pub view: ViewState,
    /// Its content.
    pub blocks: Vec<Block>,
    /// Who is signed in (shown in the header), if anyone.
    pub signed_in: Option<String>,
    /// Which navigation the page shows.
    pub area: Area,
}

/// The three faces, each with its own navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The analysts' dashboard.
    Dashboard,
    /// An ISP's portal.
    Portal,
    /// The public self-check.
    Public,
}

impl Page {
    /// A page with no blocks yet.
    pub fn new(nav: &'static str, path: impl Into<String>, title: String, lang: Lang, view: ViewState) -> Page {
        Page { nav, path: path.into(), title, lang, view, blocks: Vec::new(), signed_in: None, area: Area::Dashboard }
    }

    /// Adds raw HTML.
    pub fn html(&mut self, html: impl Into<String>) {
        self.blocks.push(Block::Html(html.into()));
    }

    /// Answers the request: the CSV of one table when `format=csv&table=ID` was asked, else the page.
    pub fn respond(self, csv: Option<(&str, &str)>) -> Response {
        if let Some((format, table)) = csv {
            if format != "csv" {
                return error_page(self.lang, StatusCode::BAD_REQUEST, "format: only csv is offered");
            }
            let found = self.blocks.iter().find_map(|b| match b {
                Block::Table(t) | Block::Chart(_, t) if t.id == table => Some(t),
                _ => None,
            });
            return match found {
                Some(table) => private(
                    (
                        [
                            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                            (
                                header::CONTENT_DISPOSITION,
                                format!("attachment; filename=\"botscope-{}.csv\"", table.id),
                            ),
                        ],
                        table.csv(),
                    )
                        .into_response(),
                ),
                None => error_page(self.lang, StatusCode::NOT_FOUND, "no table of that name on this page"),
            };
        }
        let html = self.render();
        html_response(StatusCode::OK, html)
    }

    fn render(&self) -> String {
        let lang = self.lang;
        let mut body = String::new();
        for block in &self.blocks {
            match block {
                Block::Html(html) => body.push_str(html),
                Block::Table(table) => {
                    let href = self.view.href(&self.path, &[("format", "csv"), ("table", table.id)]);
                    body.push_str(&table.html(&href, lang));
                }
                Block::Chart(kind, table) => {
                    let href = self.view.href(&self.path, &[("format", "csv"), ("table", table.id)]);
                    let _ = write!(body, "<figure class=\"chart\" id=\"c-{}\">", table.id);
                    body.push_str(&svg::chart(*kind, table, lang));
                    let _ = write!(
                        body,
                        "<figcaption>{}</figcaption><details><summary>{}</summary>{}</details></figure>",
                        esc(&table.caption),
                        lang.pick("The numbers", "数値で見る"),
                        table.html(&href, lang)
                    );
                }
            }
        }
        layout(self, &body)
    }
}

fn nav_entries(area: Area, lang: Lang) -> Vec<(&'static str, &'static str)> {
    match area {
        Area::Dashboard => vec![
            ("/", lang.pick("Overview", "概要")),
            ("/botnets", lang.pick("Botnets", "ボットネット")),
            ("/cnc", lang.pick("C&C servers", "C&Cサーバ")),
            ("/isps", lang.pick("ISPs", "ISP")),
            ("/coverage", lang.pick("Coverage", "観測範囲")),
            ("/check", lang.pick("Self-check", "セルフチェック")),
        ],
        Area::Portal => vec![
            ("/portal", lang.pick("Notifications", "通知")),
            ("/portal/tokens", lang.pick("API tokens", "APIトークン")),
        ],
        Area::Public => vec![("/check", lang.pick("Self-check", "セルフチェック"))],
    }
}

fn layout(page: &Page, body: &str) -> String {
    let lang = page.lang;
    let mut nav = String::new();
    for (href, label) in nav_entries(page.area, lang) {
        let current = if href == page.nav { " aria-current=\"page\"" } else { "" };
        // The self-check keeps only the language: filters mean nothing there.
        let link = if href == "/check" {
            format!("/check?lang={}", lang.code())
        } else {
            page.view.href(href, &[("format", ""), ("table", "")])
        };
        let _ = write!(nav, "<li><a href=\"{}\"{current}>{}</a></li>", esc(&link), esc(label));
    }
    let other = match lang {
        Lang::Ja => ("en", "English"),
        Lang::En => ("ja", "日本語"),
    };
    let switch = page.view.href(&page.path, &[("lang", other.0), ("format", ""), ("table", "")]);
    let account = match &page.signed_in {
        Some(who) => format!(
            "<form class=\"logout\" method=\"post\" action=\"/logout\"><span>{}</span> <button type=\"submit\">{}</button></form>",
            esc(who),
            lang.pick("Sign out", "ログアウト")
        ),
        None => String::new(),
    };
    let brand = match page.area {
        Area::Public => lang.pick("botscope self-check", "botscope セルフチェック"),
        Area::Portal => lang.pick("botscope ISP portal", "botscope ISPポータル"),
        Area::Dashboard => lang.pick("botscope centre", "botscope 分析センター"),
    };
    format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · botscope</title><link rel=\"icon\" href=\"data:,\">\
<link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body>\
<a class=\"skip\" href=\"#main\">{skip}</a>\
<header><p class=\"brand\">{brand}</p><nav aria-label=\"{navlabel}\"><ul>{nav}</ul></nav>\
<p class=\"lang\"><a href=\"{switch}\" hreflang=\"{other_code}\" lang=\"{other_code}\">{other_name}</a></p>{account}</header>\
<main id=\"main\"><h1>{title}</h1>{body}</main>\
<footer><p>{footer}</p></footer></body></html>\n",
        code = lang.code(),
        title = esc(&page.title),
        skip = lang.pick("Skip to content", "本文へ移動"),
        navlabel = lang.pick("Main", "メイン"),
        switch = esc(&switch),
        other_code = other.0,
        other_name = other.1,
        footer = lang.pick(
            "botscope: survey, darknet telescope, flow analysis and the centre that ties them into botnets.",
            "botscope: 脆弱機器調査・ダークネット観測・フロー分析と、それらをボットネットに結び付ける分析センター"
        ),
    )
}

/// An HTML response with the headers every page carries: no scripts, nothing from elsewhere.
pub fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// Marks a download as one person's: never stored by a shared cache, never sniffed as markup.
pub fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, axum::http::HeaderValue::from_static("nosniff"));
    headers.insert(header::VARY, axum::http::HeaderValue::from_static("Cookie"));
    response
}

/// A page that only says what went wrong.
pub fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let mut page = Page::new(
        "",
        "/",
        format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
        lang,
        ViewState::default(),
    );
    page.area = Area::Public;
    page.html(format!(
        "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/?lang={}\">{}</a></p>",
        esc(message),
        lang.code(),
        lang.pick("Back to the start", "トップへ戻る")
    ));
    let html = page.render();
    html_response(status, html)
}

/// The stylesheet (`/assets/style.css`): served from here so no page loads anything from elsewhere.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("../../assets/style.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_separators_and_defuses_formulas() {
        let mut table = Table::new("t", "T", &["a", "b"]);
        table.row(vec!["x,y".into(), "=1+1".into()]);
        table.row(vec!["say \"hi\"".into(), Cell::Num(-3.0)]);
        assert_eq!(table.csv(), "a,b\r\n\"x,y\",'=1+1\r\n\"say \"\"hi\"\"\",-3\r\n");
    }

    #[test]
    fn links_keep_the_view_and_apply_changes() {
        let mut view = ViewState::default();
        view.pairs.insert("lang".into(), "ja".into());
        view.pairs.insert("isp".into(), "a b".into());
        assert_eq!(view.href("/cnc", &[("isp", "")]), "/cnc?lang=ja");
        assert_eq!(view.href("/", &[("table", "x")]), "/?isp=a%20b&lang=ja&table=x");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}
