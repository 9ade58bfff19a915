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
pub mod figures;
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
    /// The text a sort compares, borrowed where the cell holds it: a national list sorts 48,000
    /// rows, and a copy per comparison was most of its time.
    fn sort_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(text) | Cell::Link(text, _) => std::borrow::Cow::Borrowed(text),
            Cell::Num(n) => std::borrow::Cow::Owned(number(*n)),
        }
    }

    /// How a table sorts two cells of one column: numbers by value, text in [`natural_order`].
    pub(crate) fn sort_order(&self, other: &Cell) -> std::cmp::Ordering {
        match (self, other) {
            (Cell::Num(x), Cell::Num(y)) => x.total_cmp(y),
            _ => natural_order(&self.sort_text(), &other.sort_text()),
        }
    }

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

/// Text in reading order: runs of digits compare by their value, the rest byte by byte, so that
/// serial `BN-2026-9999` comes before `BN-2026-10000` and `10.0.0.9` before `10.0.0.10` (as the
/// store orders serials); the same value written with more leading zeros comes later, so that
/// no two different texts compare equal.
pub(crate) fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a_bytes, b_bytes) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digits_from =
        |bytes: &[u8], start: usize| start + bytes[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    while i < a_bytes.len() && j < b_bytes.len() {
        if a_bytes[i].is_ascii_digit() && b_bytes[j].is_ascii_digit() {
            let (a_end, b_end) = (digits_from(a_bytes, i), digits_from(b_bytes, j));
            let a_run = &a_bytes[i..a_end];
            let b_run = &b_bytes[j..b_end];
            fn significant(run: &[u8]) -> &[u8] {
                &run[run.iter().take_while(|c| **c == b'0').count()..]
            }
            let (a_value, b_value) = (significant(a_run), significant(b_run));
            let by_value = a_value.len().cmp(&b_value.len()).then_with(|| a_value.cmp(b_value));
            if by_value != Ordering::Equal {
                return by_value;
            }
            (i, j) = (a_end, b_end);
        } else {
            if a_bytes[i] != b_bytes[j] {
                return a_bytes[i].cmp(&b_bytes[j]);
            }
            (i, j) = (i + 1, j + 1);
        }
    }
    (a_bytes.len() - i)
        .cmp(&(b_bytes.len() - j))
        .then_with(|| a_bytes.len().cmp(&b_bytes.len()))
        .then_with(|| a_bytes.cmp(b_bytes))
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
    /// When the store sorted and paged the table (`Some(all rows)`): `rows` are the page the view
    /// asks for, in order, and are shown as they are.
    pub paged_in_store: Option<usize>,
}

impl Table {
    /// An empty table.
    pub fn new(id: &'static str, caption: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            id,
            caption: caption.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            paged_in_store: None,
        }
    }

    /// The column and direction (descending: `true`) the view asks this table sorted by, if any,
    /// and the 1-based page it asks for.
    pub fn asked(&self, view: &ViewState) -> (Option<(usize, bool)>, usize) {
        let arrangement = Arrangement::of(view, self);
        (arrangement.sort, arrangement.page.max(1))
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
        self.arranged_html(csv_href, lang, None)
    }

    /// The rows in the order `sort` asks (column, descending), stable, numbers by value.
    fn sorted_rows(&self, sort: Option<(usize, bool)>) -> Vec<&Vec<Cell>> {
        let mut rows: Vec<&Vec<Cell>> = self.rows.iter().collect();
        if let Some((column, descending)) = sort {
            rows.sort_by(|a, b| {
                let order = match (a.get(column), b.get(column)) {
                    (Some(x), Some(y)) => x.sort_order(y),
                    _ => std::cmp::Ordering::Equal,
                };
                if descending { order.reverse() } else { order }
            });
        }
        rows
    }

    /// The table as HTML; with an arrangement, sorted and cut to one page of [`PAGE_ROWS`] with
    /// links to sort by each column and to the other pages.
    fn arranged_html(&self, csv_href: &str, lang: Lang, arrange: Option<(&Arrangement, &ViewLink)>) -> String {
        let mut out = format!("<div class=\"table-wrap\"><table id=\"t-{}\"><caption>{}", self.id, esc(&self.caption));
        let _ = write!(out, " <a class=\"csv\" href=\"{}\">{}</a>", esc(csv_href), lang.pick("CSV", "CSVで保存"));
        out.push_str("</caption><thead><tr>");
        let sort = arrange.and_then(|(a, _)| a.sort);
        for (index, column) in self.columns.iter().enumerate() {
            match arrange {
                Some((_, link)) => {
                    let (state, next, mark) = match sort {
                        Some((c, false)) if c == index => ("ascending", "desc", " ▲"),
                        Some((c, true)) if c == index => ("descending", "asc", " ▼"),
                        _ => ("none", "asc", ""),
                    };
                    let href = link(&[("sort", &format!("{}.{index}.{next}", self.id)), ("page", "")]);
                    let _ = write!(
                        out,
                        "<th scope=\"col\" aria-sort=\"{state}\"><a href=\"{}\">{}{mark}</a></th>",
                        esc(&href),
                        esc(column)
                    );
                }
                None => {
                    let _ = write!(out, "<th scope=\"col\">{}</th>", esc(column));
                }
            }
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
        let (rows, total) = match self.paged_in_store {
            Some(total) => (self.rows.iter().collect(), total),
            None => {
                let rows = self.sorted_rows(sort);
                let total = rows.len();
                (rows, total)
            }
        };
        let pages = total.div_ceil(PAGE_ROWS).max(1);
        let page = arrange.map_or(1, |(a, _)| a.page.clamp(1, pages));
        let shown: &[&Vec<Cell>] = match arrange {
            Some(_) if self.paged_in_store.is_none() => {
                &rows[(page - 1) * PAGE_ROWS..(page * PAGE_ROWS).min(rows.len())]
            }
            _ => &rows,
        };
        for row in shown {
            out.push_str("<tr>");
            for cell in row.iter() {
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
        out.push_str("</tbody></table>");
        if let Some((_, link)) = arrange
            && pages > 1
        {
            let first = (page - 1) * PAGE_ROWS + 1;
            let last = (page * PAGE_ROWS).min(total);
            let _ = write!(
                out,
                "<nav class=\"pager\" aria-label=\"{}\"><span>{}</span>",
                esc(&self.caption),
                lang.pick(
                    &format!("Rows {first}–{last} of {}", number(total as f64)),
                    &format!("{} 件中 {first}–{last} 件目", number(total as f64))
                )
            );
            let to = |n: usize| link(&[("page", &format!("{}.{n}", self.id))]);
            if page > 1 {
                let _ = write!(
                    out,
                    " <a rel=\"prev\" href=\"{}\">{}</a>",
                    esc(&to(page - 1)),
                    lang.pick("Previous", "前へ")
                );
            }
            if page < pages {
                let _ =
                    write!(out, " <a rel=\"next\" href=\"{}\">{}</a>", esc(&to(page + 1)), lang.pick("Next", "次へ"));
            }
            out.push_str("</nav>");
        }
        out.push_str("</div>");
        out
    }
}

/// Makes a link to this page's view with some query values changed.
type ViewLink<'a> = dyn Fn(&[(&str, &str)]) -> String + 'a;

/// Rows an HTML table shows at once; the others are a page away, and its CSV holds them all.
pub const PAGE_ROWS: usize = 100;

/// How the view asks one table to be shown: sorted by a column, and which page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Arrangement {
    /// Column index and whether descending.
    sort: Option<(usize, bool)>,
    /// 1-based page.
    page: usize,
}

impl Arrangement {
    /// Reads `sort=TABLE.COLUMN.asc|desc` and `page=TABLE.N` for `table`; values naming another
    /// table, or that do not read, leave it as it is.
    fn of(view: &ViewState, table: &Table) -> Arrangement {
        let for_table = |key: &str| {
            let value = view.pairs.get(key)?;
            let rest = value.strip_prefix(table.id)?.strip_prefix('.')?;
            Some(rest.to_string())
        };
        let sort = for_table("sort").and_then(|rest| {
            let (column, direction) = rest.split_once('.')?;
            let column: usize = column.parse().ok().filter(|c| *c < table.columns.len())?;
            match direction {
                "asc" => Some((column, false)),
                "desc" => Some((column, true)),
                _ => None,
            }
        });
        let page = for_table("page").and_then(|rest| rest.parse().ok()).unwrap_or(1);
        Arrangement { sort, page }
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
                    let arrangement = Arrangement::of(&self.view, table);
                    let link = |changes: &[(&str, &str)]| self.view.href(&self.path, changes);
                    body.push_str(&table.arranged_html(&href, lang, Some((&arrangement, &link))));
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
            page.view.href(href, &[("format", ""), ("table", ""), ("sort", ""), ("page", "")])
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
    use proptest::prelude::*;

    /// Regression: clicking the serial heading of a filtered view (sorted in memory) put
    /// `BN-2026-10000` before `BN-2026-9999`, unlike the store's serial order.
    #[test]
    fn serials_and_addresses_sort_by_the_numbers_in_them() {
        let mut texts = vec!["BN-2026-10000", "BN-2026-9999", "BN-2025-10001", "10.0.0.10", "10.0.0.9", "9.1.1.1"];
        texts.sort_by(|a, b| natural_order(a, b));
        assert_eq!(texts, ["9.1.1.1", "10.0.0.9", "10.0.0.10", "BN-2025-10001", "BN-2026-9999", "BN-2026-10000"]);
        assert_eq!(natural_order("mirai", "Mirai"), "mirai".cmp("Mirai"), "letters compare as bytes, as the store's");
        assert_eq!(natural_order("a007", "a7"), std::cmp::Ordering::Greater, "equal values: the longer text later");
    }

    proptest! {
        /// A total order: antisymmetric, equal only for equal texts, transitive,
        /// byte order where no digits are, and value order on plain numbers.
        #[test]
        fn natural_order_is_a_total_order(a in "[a0-9.-]{0,8}", b in "[a0-9.-]{0,8}", c in "[a0-9.-]{0,8}") {
            use std::cmp::Ordering::*;
            prop_assert_eq!(natural_order(&a, &b), natural_order(&b, &a).reverse());
            prop_assert_eq!(natural_order(&a, &b) == Equal, a == b);
            if natural_order(&a, &b) != Greater && natural_order(&b, &c) != Greater {
                prop_assert!(natural_order(&a, &c) != Greater);
            }
            if !a.bytes().chain(b.bytes()).any(|x| x.is_ascii_digit()) {
                prop_assert_eq!(natural_order(&a, &b), a.cmp(&b));
            }
        }

        #[test]
        fn plain_numbers_sort_by_value(x in 0u64..1_000_000, y in 0u64..1_000_000) {
            prop_assert_eq!(natural_order(&x.to_string(), &y.to_string()), x.cmp(&y));
        }
    }

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

    /// Every table sorts by any column and shows one page at a time; the CSV keeps every row.
    #[test]
    fn a_long_table_shows_one_sorted_page_with_links_to_the_others() {
        let mut table = Table::new("servers", "Servers", &["server", "bots"]);
        for n in 0..250u64 {
            table.row(vec![format!("127.0.{}.{}", n / 100, n % 100).into(), Cell::Num((n * 7 % 251) as f64)]);
        }
        let mut view = ViewState::default();
        view.pairs.insert("sort".into(), "servers.1.desc".into());
        view.pairs.insert("page".into(), "servers.2".into());
        let page = Page {
            blocks: vec![Block::Table(table.clone())],
            ..Page::new("/cnc", "/cnc", "C&C".into(), Lang::En, view)
        };
        let html = page.render();
        let body_rows = html.matches("<tr><td").count();
        assert_eq!(body_rows, PAGE_ROWS, "one page of rows");
        // Descending by bots, page 2: ranks 101 to 200 of the 250 values n*7 mod 251.
        let mut values: Vec<u64> = (0..250u64).map(|n| n * 7 % 251).collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        assert!(html.contains(&format!("<td class=\"num\">{}</td></tr>", values[100])), "first row of page 2");
        assert!(!html.contains(&format!("<td class=\"num\">{}</td></tr>", values[99])), "page 1 is not shown");
        assert!(html.contains("Rows 101–200 of 250") && html.contains("rel=\"prev\"") && html.contains("rel=\"next\""));
        assert!(html.contains("page=servers.3") && html.contains("aria-sort=\"descending\""));
        assert!(html.contains("sort=servers.1.asc"), "clicking a sorted column turns it round");
        // A value that does not read, or names another table, shows the first page as it came.
        let mut view = ViewState::default();
        view.pairs.insert("sort".into(), "servers.9.up".into());
        view.pairs.insert("page".into(), "other.2".into());
        let page = Page {
            blocks: vec![Block::Table(table.clone())],
            ..Page::new("/cnc", "/cnc", "C&C".into(), Lang::En, view)
        };
        let html = page.render();
        assert!(html.contains("<td>127.0.0.0</td>") && html.contains("Rows 1–100 of 250"));
        assert_eq!(table.csv().lines().count(), 251, "the CSV holds every row");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}
