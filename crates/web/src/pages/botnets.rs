//! Botnets: the list, and one botnet's members over time, C&C timeline, graph and lifecycle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use botscope_model::{Botnet, CncEndpoint, Kind, Record, payloads};
use botscope_store::{BotnetColumn, BotnetCurrentServer, BotnetSpan, RecordQuery, Store, records_about_within};
use uuid::Uuid;

use super::dashboard::{Dashboard, filter_form};
use super::data::{Data, View, endpoint, when};
use super::{Block, Cell, ChartKind, PAGE_ROWS, Page, Table, error_page, esc, figure, liveness_word, svg};
use crate::AppState;
use crate::error::ApiError;

/// How many bots the graph draws at most (the rest are counted).
const GRAPH_BOTS: usize = 120;

/// `GET /botnets`.
///
/// A view of a date range is sorted and paged in the store (the page of a national list is 100
/// botnets read, not every one). Sorted by the current C&C or its liveness, which the store does
/// not hold, every botnet's current server is read and sorted, and again only the page's botnets
/// are read whole. A filter (which needs the botnets' members) or the CSV reads every botnet.
pub async fn list(State(state): State<AppState>, dashboard: Dashboard) -> Result<Response, ApiError> {
    list_read(&state, dashboard, false).await
}

/// The list, chosen in the store where [`list_order`] can, or from every botnet read when
/// `read_every_botnet` (what the store's answers are tested against).
async fn list_read(
    state: &AppState,
    Dashboard { view, viewer }: Dashboard,
    read_every_botnet: bool,
) -> Result<Response, ApiError> {
    let state = state.clone();
    let lang = view.lang();
    let mut page =
        Page::new("/botnets", "/botnets", lang.pick("Botnets", "ボットネット").into(), lang, view.state.clone());
    viewer.sign(&mut page);
    page.html(filter_form(&state, &view, "/botnets").await?);
    let mut table = Table::new(
        "botnets",
        lang.pick("Botnets, by serial number", "ボットネット一覧（通し番号順）"),
        &[
            lang.pick("serial", "通し番号"),
            lang.pick("family", "ファミリ"),
            lang.pick("status", "状態"),
            lang.pick("members", "ボット数"),
            lang.pick("current C&C", "現在のC&C"),
            lang.pick("C&C alive", "C&C稼働"),
            lang.pick("first seen", "初観測"),
            lang.pick("last seen", "最終観測"),
            lang.pick("confidence", "確度"),
            lang.pick("reporters", "報告元"),
        ],
    );
    let (sort, asked_page) = table.asked(&view.state);
    let order = if read_every_botnet { None } else { list_order(&view, sort) };
    let (botnets, liveness): (Vec<Botnet>, Data) = match order {
        Some(ListOrder::InStore(column, descending)) => {
            let span = BotnetSpan { since: view.start(), first_seen_before: view.end_day() };
            let total = state.store.count_botnets(span).await? as usize;
            let shown = asked_page.clamp(1, total.div_ceil(PAGE_ROWS).max(1));
            let offset = ((shown - 1) * PAGE_ROWS) as u64;
            let botnets: Vec<Botnet> =
                payloads(state.store.botnets_page(span, column, descending, offset, PAGE_ROWS as u32).await?);
            table.paged_in_store = Some(total);
            let liveness = liveness_of_servers_shown(&state, &botnets).await?;
            (botnets, liveness)
        }
        Some(ListOrder::ByCurrentServer { by_liveness, descending }) => {
            // In serial number order, as the table's rows are added: ties keep it.
            let current = state.botnet_current_servers(view.start()).await?;
            let liveness =
                if by_liveness { Data::load(&state, &[Kind::Liveness], &view).await? } else { Data::default() };
            let (page, listed): (Vec<Uuid>, usize) = {
                let latest = liveness.latest_liveness();
                // The cell the table shows, so that the order is the table's own.
                let cell = |botnet: &BotnetCurrentServer| -> Cell {
                    match botnet.server {
                        Some(server) if by_liveness => liveness_word(latest.get(&server).map(|l| l.alive), lang).into(),
                        None if by_liveness => liveness_word(None, lang).into(),
                        Some((ip, port)) => endpoint(ip, port).into(),
                        None => "".into(),
                    }
                };
                // An end date keeps the botnets first seen before it, as reading them would.
                let end = view.end();
                let mut keyed: Vec<(Cell, Uuid)> = current
                    .iter()
                    .filter(|b| end.is_none_or(|end| b.first_seen < end))
                    .map(|b| (cell(b), b.id))
                    .collect();
                keyed.sort_by(|a, b| {
                    let order = a.0.sort_order(&b.0);
                    if descending { order.reverse() } else { order }
                });
                let listed = keyed.len();
                let shown = asked_page.clamp(1, listed.div_ceil(PAGE_ROWS).max(1));
                (keyed.into_iter().skip((shown - 1) * PAGE_ROWS).take(PAGE_ROWS).map(|(_, id)| id).collect(), listed)
            };
            table.paged_in_store = Some(listed);
            let mut read: HashMap<Uuid, Botnet> = HashMap::with_capacity(page.len());
            for record in state.store.records_by_id(&page).await? {
                if let (Some(id), Record::Botnet(botnet)) = (record.id(), record) {
                    read.insert(id, botnet);
                }
            }
            // In the page's order; one removed since the list was read (retention) is left out.
            let botnets: Vec<Botnet> = page.iter().filter_map(|id| read.remove(id)).collect();
            let liveness = if by_liveness { liveness } else { liveness_of_servers_shown(&state, &botnets).await? };
            (botnets, liveness)
        }
        None => {
            let mut data = Data::load(&state, &[Kind::Botnet, Kind::Liveness], &view).await?;
            let mut botnets = std::mem::take(&mut data.botnets);
            // In serial number order, as the store pages them: a column's ties stay in it.
            botnets.sort_by(|a, b| serial_order(&a.serial, &b.serial));
            (botnets, data)
        }
    };
    let latest = liveness.latest_liveness();
    for botnet in &botnets {
        let current = current_cnc(botnet);
        let alive = liveness_word(current.and_then(|c| latest.get(&(c.ip, c.port))).map(|l| l.alive), lang);
        table.row(vec![
            Cell::Link(botnet.serial.clone(), view.state.href(&format!("/botnets/{}", botnet.serial), &[])),
            botnet.family.clone().unwrap_or_default().into(),
            format!("{:?}", botnet.status).to_lowercase().into(),
            botnet.members.into(),
            current.map(|c| endpoint(c.ip, c.port)).unwrap_or_default().into(),
            alive.into(),
            when(botnet.first_seen).into(),
            when(botnet.last_seen).into(),
            botnet.confidence.map(Cell::Num).unwrap_or_else(|| "".into()),
            botnet.reporters.join(" ").into(),
        ]);
    }
    page.blocks.push(Block::Table(table));
    Ok(page.respond(view.csv()))
}

/// What the store sorts the list by, per column of its table; `None` where it holds no sort key
/// (the current C&C and its liveness, [`ListOrder::ByCurrentServer`]).
const STORE_COLUMNS: [Option<BotnetColumn>; 10] = [
    Some(BotnetColumn::Serial),
    Some(BotnetColumn::Family),
    Some(BotnetColumn::Status),
    Some(BotnetColumn::Members),
    None,
    None,
    Some(BotnetColumn::FirstSeen),
    Some(BotnetColumn::LastSeen),
    Some(BotnetColumn::Confidence),
    Some(BotnetColumn::Reporters),
];

/// The list's columns of the current C&C and of its liveness.
const CURRENT_SERVER_COLUMN: usize = 4;
const LIVENESS_COLUMN: usize = 5;

/// How a page of the list is chosen without reading every botnet whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListOrder {
    /// Sorted and paged in the store.
    InStore(BotnetColumn, bool),
    /// Every botnet's current server read (not the botnets), sorted here by it or, with
    /// `by_liveness`, by its liveness word; only the page's botnets are read whole.
    ByCurrentServer { by_liveness: bool, descending: bool },
}

/// How the list the view asks for is chosen, or `None` when the botnets must be read and sorted
/// here (a filter, the CSV).
fn list_order(view: &View, sort: Option<(usize, bool)>) -> Option<ListOrder> {
    if Data::filtered(view) || view.csv().is_some() {
        return None;
    }
    match sort {
        None => Some(ListOrder::InStore(BotnetColumn::Serial, false)),
        Some((column @ (CURRENT_SERVER_COLUMN | LIVENESS_COLUMN), descending)) => {
            Some(ListOrder::ByCurrentServer { by_liveness: column == LIVENESS_COLUMN, descending })
        }
        Some((column, descending)) => {
            STORE_COLUMNS.get(column).copied().flatten().map(|c| ListOrder::InStore(c, descending))
        }
    }
}

/// Serial numbers grow a digit now and then: the shorter one is the older.
fn serial_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

/// The liveness of the current servers of the botnets shown, through the address index.
async fn liveness_of_servers_shown(state: &AppState, botnets: &[Botnet]) -> Result<Data, ApiError> {
    let servers: BTreeSet<IpAddr> = botnets.iter().filter_map(|b| current_cnc(b)).map(|c| c.ip).collect();
    let query = RecordQuery { kind: Some(Kind::Liveness), ..Default::default() };
    let mut liveness = Data::default();
    liveness.liveness = payloads(records_about_within(&state.store, query, &servers).await?);
    Ok(liveness)
}

/// The server a botnet used last.
fn current_cnc(botnet: &Botnet) -> Option<&CncEndpoint> {
    botnet.cnc.iter().max_by_key(|c| c.last_seen)
}

/// `GET /botnets/{serial}`.
pub async fn show(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    Dashboard { view, viewer }: Dashboard,
) -> Result<Response, ApiError> {
    let lang = view.lang();
    // Read as a view of this botnet: its records through the serial index, not every botnet's.
    let mut narrowed = view.clone();
    narrowed.botnet.get_or_insert_with(|| serial.clone());
    let data = Data::load(&state, &[Kind::Botnet, Kind::BotnetWindow, Kind::Liveness], &narrowed).await?;
    let Some(botnet) = data.botnets.iter().find(|b| b.serial == serial) else {
        return Ok(error_page(lang, StatusCode::NOT_FOUND, "no botnet with that serial number in this range"));
    };
    let path = format!("/botnets/{}", botnet.serial);
    let mut page = Page::new(
        "/botnets",
        path,
        format!("{} {}", lang.pick("Botnet", "ボットネット"), botnet.serial),
        lang,
        view.state.clone(),
    );
    viewer.sign(&mut page);
    let latest = data.latest_liveness();
    let mut windows: Vec<&botscope_model::BotnetWindow> = data.windows.iter().filter(|w| w.serial == serial).collect();
    windows.sort_by_key(|w| w.window_start);
    page.html(format!(
        "<dl class=\"facts\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{:?}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{} – {}</dd><dt>{}</dt><dd>{}</dd></dl>",
        lang.pick("Family", "ファミリ"),
        esc(botnet.family.as_deref().unwrap_or("?")),
        lang.pick("Status", "状態"),
        botnet.status,
        lang.pick("Members", "ボット数"),
        botnet.members,
        lang.pick("Seen", "観測期間"),
        when(botnet.first_seen),
        when(botnet.last_seen),
        lang.pick("Reporters", "報告元"),
        esc(&botnet.reporters.join(", ")),
    ));

    let mut members = Table::new(
        "members",
        lang.pick("Members per correlation window", "相関分析の期間ごとのボット数"),
        &[lang.pick("window", "期間"), lang.pick("bots", "ボット数")],
    );
    for w in &windows {
        members.row(vec![when(w.window_start).into(), w.bots.len().into()]);
    }
    page.html(format!("<h2>{}</h2>", lang.pick("Members over time", "ボット数の推移")));
    page.blocks.push(Block::Chart(ChartKind::Lines, members));

    page.html(format!("<h2>{}</h2>", lang.pick("C&C servers over time", "C&Cサーバの変遷")));
    let spans: Vec<svg::Span> = botnet
        .cnc
        .iter()
        .map(|c| svg::Span {
            label: endpoint(c.ip, c.port),
            from: c.first_seen.timestamp(),
            to: c.last_seen.timestamp(),
            alive: latest.get(&(c.ip, c.port)).map(|l| l.alive),
        })
        .collect();
    let events: Vec<(i64, String)> =
        botnet.events.iter().map(|e| (e.at.timestamp(), format!("{} {}", when(e.at), e.event.as_str()))).collect();
    page.html(figure(
        svg::timeline(&spans, &events, lang, lang.pick("C&C servers and lifecycle events", "C&Cサーバとライフサイクル")),
        lang.pick(
            "Each bar is a C&C server from first to last use (red: answering when last probed, grey: dead); dashed lines are lifecycle events.",
            "棒はC&Cサーバの使用期間（赤: 最後の確認で応答あり、灰: 停止）、破線はライフサイクルの出来事です。"
        ),
    ));
    let mut servers = Table::new(
        "cnc",
        lang.pick("C&C servers", "C&Cサーバ"),
        &[
            lang.pick("server", "サーバ"),
            lang.pick("protocol", "プロトコル"),
            lang.pick("first seen", "初観測"),
            lang.pick("last seen", "最終観測"),
            lang.pick("liveness", "稼働状況"),
        ],
    );
    for c in &botnet.cnc {
        let live = liveness_word(latest.get(&(c.ip, c.port)).map(|l| l.alive), lang);
        servers.row(vec![
            endpoint(c.ip, c.port).into(),
            c.transport.as_str().into(),
            when(c.first_seen).into(),
            when(c.last_seen).into(),
            live.into(),
        ]);
    }
    page.blocks.push(Block::Table(servers));

    page.html(format!("<h2>{}</h2>", lang.pick("Bots and their C&C servers", "ボットとC&Cサーバの関係")));
    let server_names: Vec<String> = botnet.cnc.iter().map(|c| endpoint(c.ip, c.port)).collect();
    let mut links: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for w in &windows {
        for c in &w.cnc {
            let Some(index) = server_names.iter().position(|n| *n == endpoint(c.ip, c.port)) else { continue };
            for bot in &w.bots {
                links.entry(bot.to_string()).or_default().insert(index);
            }
        }
    }
    let total = links.len();
    let bots: Vec<(String, Vec<usize>)> =
        links.into_iter().take(GRAPH_BOTS).map(|(bot, s)| (bot, s.into_iter().collect())).collect();
    let title = format!("{} {}", botnet.serial, lang.pick("bots and C&C servers", "のボットとC&Cサーバ"));
    let graph = svg::Graph {
        servers: botnet
            .cnc
            .iter()
            .map(|c| (endpoint(c.ip, c.port), latest.get(&(c.ip, c.port)).map(|l| l.alive)))
            .collect(),
        hidden: total - bots.len(),
        bots,
        title: &title,
    };
    page.html(figure(
        svg::graph(&graph, lang),
        lang.pick(
            "Squares are C&C servers, dots are bots; a line joins a bot to each server it was seen with.",
            "四角がC&Cサーバ、点がボットです。線はボットと、そのボットが通信していたサーバを結びます。",
        ),
    ));

    page.html(format!("<h2>{}</h2>", lang.pick("Lifecycle", "ライフサイクル")));
    let mut events = Table::new(
        "events",
        lang.pick("Lifecycle events", "ライフサイクルの出来事"),
        &[
            lang.pick("when", "日時"),
            lang.pick("event", "出来事"),
            lang.pick("serials", "関連番号"),
            lang.pick("detail", "詳細"),
        ],
    );
    for e in &botnet.events {
        events.row(vec![
            when(e.at).into(),
            e.event.as_str().into(),
            e.serials.join(" ").into(),
            e.detail.clone().into(),
        ]);
    }
    page.blocks.push(Block::Table(events));
    Ok(page.respond(view.csv()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::HeaderMap;

    use super::*;
    use crate::pages::session::Viewer;

    /// The list's table rows and pager as HTML.
    async fn shown(state: &AppState, query: &[(&str, &str)]) -> (String, String) {
        shown_read(state, query, false).await
    }

    /// The list's table rows and pager as HTML, from every botnet read when `read_every_botnet`.
    async fn shown_read(state: &AppState, query: &[(&str, &str)], read_every_botnet: bool) -> (String, String) {
        let query: HashMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let view = View::parse(&query, &HeaderMap::new()).unwrap();
        let dashboard = Dashboard { view, viewer: Viewer(None) };
        let response = list_read(state, dashboard, read_every_botnet).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
        let html = String::from_utf8(bytes.to_vec()).unwrap();
        let table = html.split("id=\"t-botnets\"").nth(1).unwrap();
        let rows = table.split("<tbody>").nth(1).unwrap().split("</tbody>").next().unwrap().to_string();
        let pager = table.split("<nav class=\"pager\"").nth(1).map(|p| p.split("</nav>").next().unwrap().to_string());
        (rows, pager.unwrap_or_default())
    }

    /// A page of the list sorted and paged without reading every botnet shows the rows, liveness
    /// and pager that sorting and paging every botnet read shows, for every column (those the
    /// store sorts by, the current C&C and its liveness), both ways, on the first, a middle, the
    /// last and a too-far page, with and without a start and an end date.
    #[tokio::test]
    async fn a_page_sorted_in_the_store_is_the_page_of_every_botnet_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("botnets.db"), 1).await.unwrap();
        let mut lines = Vec::new();
        for n in 0..250u32 {
            // Ties in every column, none within a minute that the table shows alike.
            let family = ["", r#","family":"Mirai""#, r#","family":"gafgyt""#, r#","family":"mozi""#][(n % 4) as usize];
            let status = ["active", "dormant", "dead"][(n % 3) as usize];
            let confidence =
                if n % 5 == 0 { String::new() } else { format!(r#","confidence":{}"#, f64::from(n % 7) / 7.0) };
            let (first, last) = (format!("2026-10-{:02}T{:02}:00:00Z", 1 + n % 20, n % 24), 1 + n % 9);
            // Servers: none, one, two last seen at once (the later listed is current), two with
            // the first listed current; IPv4 and IPv6; some shared by two botnets.
            let server =
                if n % 11 == 0 { format!("::1:{:x}", n % 40) } else { format!("127.200.{}.{}", n / 200, n % 120) };
            let cnc = |ip: &str, port: u16, last: &str| {
                format!(
                    r#"{{"ip":"{ip}","port":{port},"transport":"tcp","first_seen":"{first}","last_seen":"{last}"}}"#
                )
            };
            let last_seen = format!("2026-11-0{last}T00:00:00Z");
            let cnc = match n % 7 {
                0 => String::new(),
                1 => [cnc("127.9.9.9", 23, &last_seen), cnc(&server, 2323, &last_seen)].join(","),
                2 => [cnc(&server, 23, &last_seen), cnc("127.9.9.8", 23, "2026-10-25T00:00:00Z")].join(","),
                _ => cnc(&server, 23, &last_seen),
            };
            lines.push(format!(
                r#"{{"kind":"botnet","serial":"BN-2026-{n:04}","status":"{status}","first_seen":"{first}","last_seen":"{last_seen}","members":{}{family}{confidence},"reporters":[{}],"cnc":[{cnc}]}}"#,
                n % 17,
                // One reporter, or two in either order.
                ["\"isp-0\"", "\"isp-1\"", "\"isp-2\"", "\"isp-1\",\"isp-0\"", "\"isp-0\",\"isp-2\""][(n % 5) as usize]
            ));
            if n % 3 == 0 || n % 7 == 1 {
                let port = if n % 7 == 1 { 2323 } else { 23 };
                // An older verdict, then the latest; some servers are probed only once.
                for (checked, alive) in [("2026-11-01T10:00:00Z", n % 2 == 1), ("2026-11-02T10:00:00Z", n % 2 == 0)]
                    .into_iter()
                    .skip(usize::from(n % 4 == 0))
                {
                    lines.push(format!(
                        r#"{{"kind":"liveness","ip":"{server}","port":{port},"protocol":"tcp","checked_at":"{checked}","alive":{alive},"outcome":"connected","sensor":"liveness-1"}}"#
                    ));
                }
            }
        }
        let records: Vec<_> =
            lines.iter().map(|l| botscope_model::parse_line(l.as_bytes(), None).unwrap().unwrap()).collect();
        store.put_records(&records).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        // First sightings run from 1 to 20 October: an end date of 10 October keeps half.
        let mut compared = 0;
        for (from, to) in [("", ""), ("2026-11-05", ""), ("", "2026-10-10"), ("2026-10-05", "2026-10-10")] {
            for column in 0..STORE_COLUMNS.len() {
                for direction in ["asc", "desc"] {
                    for page in ["1", "2", "3", "9"] {
                        let sort = format!("botnets.{column}.{direction}");
                        let page = format!("botnets.{page}");
                        let query = [("from", from), ("to", to), ("sort", sort.as_str()), ("page", page.as_str())];
                        let query: Vec<(&str, &str)> = query.into_iter().filter(|(_, v)| !v.is_empty()).collect();
                        let (paged, paged_pager) = shown(&state, &query).await;
                        let parsed: HashMap<String, String> =
                            query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                        let view = View::parse(&parsed, &HeaderMap::new()).unwrap();
                        let asked = Some((column, direction == "desc"));
                        assert!(list_order(&view, asked).is_some(), "paged without reading every botnet");
                        let (read, read_pager) = shown_read(&state, &query, true).await;
                        let differs = paged.split("</tr>").zip(read.split("</tr>")).find(|(a, b)| a != b);
                        let asked = format!("{from}..{to} {sort} {page}");
                        assert!(paged == read, "{asked}: first difference {differs:?}");
                        assert_eq!(paged_pager, read_pager, "{asked}");
                        assert!(paged.contains("<tr>"), "{asked}");
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 4 * 10 * 2 * 4);
        // A filter still reads every botnet (it needs their members).
        let filtered: HashMap<String, String> = [("isp".to_string(), "isp-0".to_string())].into();
        assert!(list_order(&View::parse(&filtered, &HeaderMap::new()).unwrap(), None).is_none());
        // Unsorted, the list is in serial order, as its caption says.
        let (rows, pager) = shown(&state, &[]).await;
        assert!(rows.find("BN-2026-0000").unwrap() < rows.find("BN-2026-0001").unwrap());
        assert!(pager.contains("Rows 1–100 of 250"), "{pager}");
        // The liveness of a shown botnet's server is read for the page.
        assert!(rows.contains("alive") || rows.contains("稼働"), "{rows}");
    }

    /// The botnets' current servers are kept between pages and read again as soon as correlation
    /// rewrites a botnet: a botnet that moved to another server sorts by the new one at once.
    #[tokio::test]
    async fn the_kept_current_servers_are_read_again_when_a_botnet_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("kept.db"), 1).await.unwrap();
        let botnet = |serial: &str, server: &str| {
            let line = format!(
                r#"{{"kind":"botnet","serial":"{serial}","status":"active","first_seen":"2026-11-01T00:00:00Z","last_seen":"2026-11-02T00:00:00Z","members":1,"cnc":[{{"ip":"{server}","port":23,"transport":"tcp","first_seen":"2026-11-01T00:00:00Z","last_seen":"2026-11-02T00:00:00Z"}}]}}"#
            );
            botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap()
        };
        store
            .put_records(&[botnet("BN-2026-0001", "127.200.0.9"), botnet("BN-2026-0002", "127.200.0.10")])
            .await
            .unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        let order = || async {
            let (rows, _) = shown(&state, &[("sort", "botnets.4.asc")]).await;
            let first = rows.find("BN-2026-0001").unwrap();
            let second = rows.find("BN-2026-0002").unwrap();
            if first < second { ["0001", "0002"] } else { ["0002", "0001"] }
        };
        let reads = || state.metrics.botnet_list_reads.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(order().await, ["0001", "0002"], "127.200.0.9 before 127.200.0.10");
        assert_eq!(order().await, ["0001", "0002"]);
        assert_eq!(reads(), 1, "unchanged, read once");
        // Correlation moves the first botnet to a server that sorts after the second's.
        botscope_store::Store::upsert_records(&state.store, &[botnet("BN-2026-0001", "127.200.0.11")]).await.unwrap();
        assert_eq!(order().await, ["0002", "0001"], "the new server at once");
        assert_eq!(reads(), 2);
    }
}
