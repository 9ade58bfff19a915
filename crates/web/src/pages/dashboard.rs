//! The analysts' dashboard: overview with the report's figures, C&C servers, ISPs, coverage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::net::IpAddr;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use botscope_center::rollup::HostCount;
use botscope_model::Kind;

use super::data::{Data, View, endpoint, every_day, isp_handles, when};
use super::figures::{Coverage, Figures};
use super::session::Viewer;
use super::{Block, Cell, ChartKind, Lang, Page, Table, error_page, esc, liveness_word};
use crate::AppState;
use crate::error::ApiError;

/// Device types in the order NOTICE reports them.
pub const DEVICE_TYPES: [&str; 9] =
    ["router", "camera", "dvr", "nvr", "nas", "printer", "set_top_box", "controller", "other"];

/// Reads the view or answers with the error page.
pub fn read_view(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<View, Box<Response>> {
    View::parse(query, headers).map_err(|e| {
        let lang = Lang::choose(query.get("lang").map(String::as_str), headers);
        Box::new(error_page(lang, StatusCode::BAD_REQUEST, &e))
    })
}

/// What every dashboard page starts from: who looks (signed in, or an open dashboard) and the
/// view its URL asks for. A malformed view is answered with the error page.
pub struct Dashboard {
    /// The view: language and filters.
    pub view: View,
    /// Who looks.
    pub viewer: Viewer,
}

impl FromRequestParts<AppState> for Dashboard {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| error_page(Lang::En, StatusCode::BAD_REQUEST, &rejection.body_text()))?;
        let view = read_view(&query, &parts.headers).map_err(|page| *page)?;
        Ok(Dashboard { view, viewer })
    }
}

/// The filter form: GET, so the view's state stays in its URL.
pub async fn filter_form(state: &AppState, view: &View, path: &str) -> Result<String, ApiError> {
    let lang = view.lang();
    let mut out = format!(
        "<form class=\"filters\" method=\"get\" action=\"{}\" aria-label=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">",
        esc(path),
        lang.pick("Filters", "絞り込み"),
        lang.code()
    );
    let date = |name: &str, label: &str, value: Option<chrono::NaiveDate>| {
        format!(
            "<label>{label} <input type=\"date\" name=\"{name}\" value=\"{}\"></label>",
            value.map(|d| d.to_string()).unwrap_or_default()
        )
    };
    out.push_str(&date("from", lang.pick("From", "開始日"), view.from));
    out.push_str(&date("to", lang.pick("To", "終了日"), view.to));
    let select = |name: &str, label: &str, options: &[String], current: Option<&String>| {
        let mut html = format!(
            "<label>{label} <select name=\"{name}\"><option value=\"\">{}</option>",
            lang.pick("all", "すべて")
        );
        for option in options {
            let selected = if Some(option) == current { " selected" } else { "" };
            let _ = write!(html, "<option{selected}>{}</option>", esc(option));
        }
        html.push_str("</select></label>");
        html
    };
    out.push_str(&select("isp", "ISP", &isp_handles(state).await?, view.isp.as_ref()));
    let types: Vec<String> = DEVICE_TYPES.iter().map(|t| t.to_string()).collect();
    out.push_str(&select("device_type", lang.pick("Device type", "機器の種類"), &types, view.device_type.as_ref()));
    // A serial is typed, not picked: a national centre holds tens of thousands of botnets, and
    // listing them made every page a megabyte and a read of every botnet.
    let _ = write!(
        out,
        "<label>{} <input type=\"text\" name=\"botnet\" value=\"{}\" placeholder=\"BN-2026-0001\" size=\"13\" maxlength=\"64\" pattern=\"[A-Za-z0-9._-]*\"></label>",
        lang.pick("Botnet", "ボットネット"),
        esc(view.botnet.as_deref().unwrap_or_default())
    );
    let _ = write!(
        out,
        "<button type=\"submit\">{}</button> <a href=\"{}?lang={}\">{}</a></form>",
        lang.pick("Apply", "適用"),
        esc(path),
        lang.code(),
        lang.pick("Clear", "解除")
    );
    Ok(out)
}

/// Shown under the cards when a count is estimated from the roll-ups' sketches.
const ESTIMATED_EN: &str = "Counts of distinct hosts over days with more than a thousand hosts a day are estimated \
     (≈, about ±2 %); each day's own count is exact.";
const ESTIMATED_JA: &str =
    "1日あたり千台を超える日を含む期間のホスト数は推定値です（≈、誤差は約±2%）。各日の値は正確です。";

fn exact(n: usize) -> HostCount {
    HostCount { value: n as u64, exact: true }
}

fn card(label: &str, count: HostCount, id: &str, detail: &str) -> String {
    let value = count.value;
    let shown = if count.exact { value.to_string() } else { format!("≈{value}") };
    format!(
        "<div class=\"card\" id=\"card-{id}\"><p class=\"card-label\">{}</p><p class=\"card-value\" data-value=\"{value}\">{shown}</p><p class=\"card-detail\">{}</p></div>",
        esc(label),
        esc(detail)
    )
}

/// `GET /`: the overview and the report's figures.
pub async fn overview(
    State(state): State<AppState>,
    Dashboard { view, viewer }: Dashboard,
) -> Result<Response, ApiError> {
    let lang = view.lang();
    // Hosts and cases come from the daily roll-ups where they can answer the view; the rest is
    // read, bounded by the view's time range.
    let rolled_up = Figures::rolled_up(&view);
    // A national centre's tens of thousands of botnets are not read for two numbers.
    let counted = Data::botnets_answered_in_store(&view);
    let mut kinds = vec![Kind::DarknetDay, Kind::Liveness];
    if !counted {
        kinds.push(Kind::Botnet);
    }
    if !rolled_up {
        kinds.extend([Kind::Activity, Kind::Finding, Kind::Notification]);
    }
    // The reads at once: one after another, a busy centre made each wait its turn for a core.
    let since = view.start();
    let store = &state.store;
    let count = |status: Option<&'static str>| async move {
        if counted {
            botscope_store::Store::count_since(store, Kind::Botnet, since, status)
                .await
                .map(|n| Some(n as usize))
                .map_err(ApiError::from)
        } else {
            Ok(None)
        }
    };
    let rolled_up_figures =
        async { if rolled_up { Figures::of_rollups(&state, &view, &[]).await.map(Some) } else { Ok(None) } };
    // BotnetStatus::Active as records spell it.
    let (data, all_counted, active_counted, rolled_up_figures) = tokio::try_join!(
        Data::load_with_servers(&state, &kinds, &view),
        count(None),
        count(Some("active")),
        rolled_up_figures,
    )?;
    let (botnets, active) = match (all_counted, active_counted) {
        (Some(all), Some(active)) => (all, active),
        _ => {
            let active = data.botnets.iter().filter(|b| b.status == botscope_model::BotnetStatus::Active).count();
            (data.botnets.len(), active)
        }
    };
    let figures = match rolled_up_figures {
        Some(figures) => figures,
        None => Figures::of_data(&data, &[]),
    };
    let mut page = Page::new("/", "/", lang.pick("Overview", "概要").into(), lang, view.state.clone());
    viewer.sign(&mut page);
    page.html(filter_form(&state, &view, "/").await?);

    let servers = &data.servers;
    let latest = data.latest_liveness();
    let alive = servers.keys().filter(|(ip, port, _)| latest.get(&(*ip, *port)).is_some_and(|l| l.alive)).count();
    let mut cards = String::from("<section class=\"cards\" aria-label=\"summary\">");
    cards.push_str(&card(
        lang.pick("Infected hosts", "感染ホスト"),
        figures.bots,
        "bots",
        lang.pick("seen by the darknet telescope", "ダークネットで観測"),
    ));
    cards.push_str(&card(
        lang.pick("Vulnerable devices", "脆弱な機器"),
        figures.vulnerable,
        "vulnerable",
        lang.pick("found by the survey", "調査で発見"),
    ));
    cards.push_str(&card(
        lang.pick("C&C servers alive", "稼働中のC&C"),
        exact(alive),
        "cnc-alive",
        &format!("{} {}", servers.len(), lang.pick("known", "件を把握")),
    ));
    cards.push_str(&card(
        lang.pick("Botnets", "ボットネット"),
        exact(botnets),
        "botnets",
        &format!("{active} {}", lang.pick("active", "件が活動中")),
    ));
    cards.push_str(&card(
        lang.pick("Cases notified", "通知した件数"),
        exact(figures.notified as usize),
        "notified",
        &format!("{} {}", figures.fixed, lang.pick("confirmed fixed", "件の対処を確認")),
    ));
    cards.push_str("</section>");
    page.html(cards);
    if figures.estimated() {
        page.html(format!("<p class=\"note\">{}</p>", lang.pick(ESTIMATED_EN, ESTIMATED_JA)));
    }

    // Trend: infected hosts and vulnerable devices per day.
    let mut trend = Table::new(
        "trend",
        lang.pick("Infected hosts and vulnerable devices per day", "日ごとの感染ホストと脆弱な機器"),
        &["date", lang.pick("infected hosts", "感染ホスト"), lang.pick("vulnerable devices", "脆弱な機器")],
    );
    for (day, (infected, vulnerable)) in &every_day(figures.trend.clone()) {
        trend.row(vec![day.clone().into(), (*infected).into(), (*vulnerable).into()]);
    }
    page.html(format!("<h2>{}</h2>", lang.pick("Trends", "推移")));
    page.blocks.push(Block::Chart(ChartKind::Lines, trend));

    page.html(format!("<h2>{}</h2>", lang.pick("Darknet", "ダークネット観測")));
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    for day in &data.days {
        for c in &day.categories {
            *categories.entry(c.category.clone()).or_insert(0) += c.packets;
        }
    }
    let mut by_category: Vec<(String, u64)> = categories.into_iter().collect();
    by_category.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // The darknet's daily counts are kept per telescope, not per host: they cannot follow these filters.
    let whole = |caption: &str| {
        if Data::filtered(&view) {
            format!(
                "{caption} {}",
                lang.pick("(all hosts: not split by the filters)", "（全体の値: 絞り込みは適用されません）")
            )
        } else {
            caption.to_string()
        }
    };
    let mut table = Table::new(
        "categories",
        whole(lang.pick("Darknet packets by service category", "サービス種別ごとのダークネット観測パケット数")),
        &[lang.pick("category", "種別"), lang.pick("packets", "パケット数")],
    );
    for (category, packets) in by_category {
        table.row(vec![category.into(), packets.into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));

    let mut days: Vec<&botscope_model::DarknetDay> = data.days.iter().collect();
    days.sort_by(|a, b| a.date.cmp(&b.date));
    let mut mirai: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for day in days {
        let slot = mirai.entry(day.date.clone()).or_default();
        match &view.isp {
            Some(isp) => {
                for row in day.by_isp.iter().filter(|r| &r.isp == isp) {
                    slot.0 += row.mirai_packets;
                    slot.1 += row.mirai_sources;
                }
            }
            None => {
                slot.0 += day.mirai_packets;
                slot.1 += day.mirai_sources;
            }
        }
    }
    // Two charts, not one: packets run in thousands where hosts run in tens.
    let mut packets = Table::new(
        "mirai_packets_daily",
        lang.pick("Packets with the Mirai fingerprint, per day", "Mirai特有の痕跡を持つパケット数（日別）"),
        &["date", lang.pick("packets", "パケット数")],
    );
    let mut hosts = Table::new(
        "mirai_hosts_daily",
        lang.pick(
            "Unique hosts sending the Mirai fingerprint, per day",
            "Mirai特有の痕跡を持つパケットの送信元ホスト数（日別）",
        ),
        &["date", lang.pick("hosts", "ホスト数")],
    );
    if view.device_type.is_some() || view.botnet.is_some() {
        packets.caption = whole(&packets.caption);
        hosts.caption = whole(&hosts.caption);
    }
    for (date, (p, h)) in every_day(mirai) {
        packets.row(vec![date.clone().into(), p.into()]);
        hosts.row(vec![date.into(), h.into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Lines, packets));
    page.blocks.push(Block::Chart(ChartKind::Lines, hosts));

    page.html(format!("<h2>{}</h2>", lang.pick("Notifications", "注意喚起")));
    let mut table = Table::new(
        "notified_monthly",
        lang.pick(
            "Devices notified for a weak or missing password, per month",
            "ID・パスワードに問題のある機器の通知件数（月別）",
        ),
        &["month", lang.pick("cases", "件数")],
    );
    for (month, n) in &figures.weak_monthly {
        table.row(vec![month.clone().into(), (*n).into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));
    let mut table = Table::new(
        "infected_daily",
        lang.pick("Infected hosts notified, per day", "マルウェア感染の通知件数（日別）"),
        &["date", lang.pick("cases", "件数")],
    );
    for (day, n) in every_day(figures.infected_daily.clone()) {
        table.row(vec![day.into(), n.into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));

    page.html(format!("<h2>{}</h2>", lang.pick("Vulnerable devices", "脆弱な機器")));
    let mut table = Table::new(
        "device_types",
        lang.pick("Vulnerable devices by type", "脆弱な機器の種類"),
        &[lang.pick("type", "種類"), lang.pick("devices", "台数")],
    );
    for (kind, n) in &figures.device_types {
        table.row(vec![kind.clone().into(), n.value.into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));
    let mut table = Table::new(
        "release_years",
        lang.pick("Vulnerable devices by the model's release year", "脆弱な機器の発売年"),
        &[lang.pick("year", "発売年"), lang.pick("devices", "台数")],
    );
    for (year, n) in &figures.years {
        table.row(vec![year.to_string().into(), n.value.into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));

    page.html(format!("<h2>{}</h2>", lang.pick("C&C detection", "C&Cサーバの検知")));
    let unavailable = |e: botscope_center::CenterError| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    if Data::filtered(&view) {
        // The lead times read the per-server roll-up, which an unfiltered view brought up to date.
        state.refresh_rollups_for(&view).await.map_err(unavailable)?;
    }
    let leads = botscope_center::feeds::lead_times(&state.store).await.map_err(unavailable)?;
    let mut table = Table::new(
        "feed_lead",
        whole(lang.pick("C&C servers botscope found before outside feeds", "外部フィードより先に検知したC&Cサーバ")),
        &[
            lang.pick("feed", "フィード"),
            lang.pick("shared servers", "共通のサーバ"),
            lang.pick("found first", "先に検知"),
            lang.pick("median days ahead", "先行日数の中央値"),
            lang.pick("only botscope", "botscopeのみ"),
            lang.pick("only the feed", "フィードのみ"),
        ],
    );
    for lead in leads {
        table.row(vec![
            lead.source.into(),
            lead.shared.into(),
            lead.found_first.into(),
            lead.median_days_ahead.map(Cell::Num).unwrap_or_else(|| "".into()),
            lead.only_botscope.into(),
            lead.only_feed.into(),
        ]);
    }
    page.blocks.push(Block::Table(table));
    // Bounded like the correlation report: the top reporters by servers, the rest summed.
    let sightings = data.servers.iter().flat_map(|(key, s)| s.reporters.iter().map(|r| (*key, r.as_deref())));
    let figure = botscope_center::correlate::reporter_overlap_of(sightings, botscope_center::correlate::TOP_REPORTERS);
    let mut table = Table::new(
        "isp_overlap",
        lang.pick(
            "C&C servers each ISP's analyser reported, and those two ISPs share",
            "ISPごとのC&C報告数と、ISP間で共通のサーバ数",
        ),
        &[lang.pick("ISP analyser(s)", "ISPの分析"), lang.pick("servers", "サーバ数")],
    );
    for (name, servers) in &figure.per_reporter {
        table.row(vec![name.clone().into(), (*servers).into()]);
    }
    if figure.others > 0 {
        let label = match lang {
            Lang::En => format!("others ({} analysers)", figure.others),
            Lang::Ja => format!("その他（{}件の分析）", figure.others),
        };
        table.row(vec![label.into(), figure.others_servers.into()]);
    }
    for pair in &figure.overlap {
        table.row(vec![format!("{} & {}", pair.a, pair.b).into(), pair.shared.into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));
    if figure.others > 0 {
        page.html(format!(
            "<p>{}</p>",
            esc(&match lang {
                Lang::En => format!(
                    "Only the {} analysers that reported the most servers are named; {} more are summed as others, and pairs are shown among the named only.",
                    figure.per_reporter.len(),
                    figure.others
                ),
                Lang::Ja => format!(
                    "報告したサーバが多い{}件の分析のみ名前を示し、残り{}件は「その他」にまとめています（共通数は名前を示した分析の間のみ）。",
                    figure.per_reporter.len(),
                    figure.others
                ),
            })
        ));
    }
    Ok(page.respond(view.csv()))
}

/// `GET /cnc`: every C&C server with its sources and liveness.
pub async fn cnc(State(state): State<AppState>, Dashboard { view, viewer }: Dashboard) -> Result<Response, ApiError> {
    let lang = view.lang();
    // Which botnet each server belongs to, from the botnets' server lists rather than every
    // botnet read whole.
    let listed_in_store = Data::botnets_answered_in_store(&view);
    let kinds: &[Kind] = if listed_in_store {
        &[Kind::Liveness, Kind::FeedEntry]
    } else {
        &[Kind::Botnet, Kind::Liveness, Kind::FeedEntry]
    };
    let data = Data::load_with_servers(&state, kinds, &view).await?;
    let mut page = Page::new("/cnc", "/cnc", lang.pick("C&C servers", "C&Cサーバ").into(), lang, view.state.clone());
    viewer.sign(&mut page);
    page.html(filter_form(&state, &view, "/cnc").await?);
    let latest = data.latest_liveness();
    let stored_servers;
    let botnet_of: HashMap<(IpAddr, u16), &str> = if listed_in_store {
        stored_servers = state.botnet_servers(view.start()).await?;
        // The last botnet (in record id order) to list a server names it, as below.
        stored_servers.iter().map(|(serial, ip, port)| ((*ip, *port), serial.as_str())).collect()
    } else {
        data.botnet_of_server()
    };
    let mut table = Table::new(
        "cnc",
        lang.pick("C&C servers", "C&Cサーバ一覧"),
        &[
            lang.pick("server", "サーバ"),
            lang.pick("protocol", "プロトコル"),
            lang.pick("botnet", "ボットネット"),
            lang.pick("family", "ファミリ"),
            lang.pick("sources", "情報源"),
            lang.pick("best score", "最高スコア"),
            lang.pick("first seen", "初観測"),
            lang.pick("last seen", "最終観測"),
            lang.pick("liveness", "稼働状況"),
            lang.pick("last checked", "最終確認"),
        ],
    );
    // Feed entries by server, once: thousands of servers each scanning every entry was quadratic.
    let mut listed: HashMap<(IpAddr, u16), Vec<&botscope_model::FeedEntry>> = HashMap::new();
    for entry in &data.feeds {
        if let Some(port) = entry.port {
            listed.entry((entry.ip, port)).or_default().push(entry);
        }
    }
    for (&(ip, port, protocol), server) in data.servers.iter() {
        let entries = listed.get(&(ip, port)).map(Vec::as_slice).unwrap_or_default();
        let mut sources: BTreeSet<String> = server.reporters.iter().flatten().cloned().collect();
        sources.extend(entries.iter().map(|f| f.source.clone()));
        let family =
            server.seen.family.clone().or_else(|| entries.iter().find_map(|f| f.family.clone())).unwrap_or_default();
        let (score, first, last) = (server.seen.best_score, server.seen.first_seen, server.seen.last_seen);
        let probe = latest.get(&(ip, port));
        let live = liveness_word(probe.map(|l| l.alive), lang);
        let checked = probe.map(|l| when(l.checked_at)).unwrap_or_default();
        let botnet = match botnet_of.get(&(ip, port)) {
            Some(serial) => Cell::Link(serial.to_string(), format!("/botnets/{serial}?lang={}", lang.code())),
            None => "".into(),
        };
        table.row(vec![
            endpoint(ip, port).into(),
            protocol.as_str().into(),
            botnet,
            family.into(),
            sources.into_iter().collect::<Vec<_>>().join(" ").into(),
            ((score * 1000.0).round() / 1000.0).into(),
            when(first).into(),
            when(last).into(),
            live.into(),
            checked.into(),
        ]);
    }
    page.blocks.push(Block::Table(table));
    Ok(page.respond(view.csv()))
}

/// `GET /isps`: per ISP, what was seen, notified and fixed.
pub async fn isps(State(state): State<AppState>, Dashboard { view, viewer }: Dashboard) -> Result<Response, ApiError> {
    let lang = view.lang();
    let rolled_up = Figures::rolled_up(&view);
    let mut kinds = vec![Kind::Isp];
    if !rolled_up {
        kinds.extend([Kind::Notification, Kind::Outcome, Kind::Activity, Kind::Finding]);
    }
    let data = Data::load(&state, &kinds, &view).await?;
    let shown: Vec<String> =
        data.isps.iter().map(|i| i.handle.clone()).filter(|h| view.isp.as_ref().is_none_or(|only| only == h)).collect();
    let figures =
        if rolled_up { Figures::of_rollups(&state, &view, &shown).await? } else { Figures::of_data(&data, &shown) };
    let mut page = Page::new("/isps", "/isps", "ISP".into(), lang, view.state.clone());
    if lang == Lang::En {
        page.title = "ISPs".into();
    }
    viewer.sign(&mut page);
    page.html(filter_form(&state, &view, "/isps").await?);
    let mut table = Table::new(
        "isps",
        lang.pick("ISPs: what was seen, notified and fixed", "ISP別の観測・通知・対処状況"),
        &[
            "ISP",
            lang.pick("name", "名称"),
            lang.pick("infected hosts", "感染ホスト"),
            lang.pick("vulnerable devices", "脆弱な機器"),
            lang.pick("cases notified", "通知件数"),
            lang.pick("fixed (re-survey)", "対処済み（再調査で確認）"),
            lang.pick("fixed (ISP says)", "対処済み（ISP申告）"),
            lang.pick("not fixed", "未対処"),
            lang.pick("remediation rate (%)", "対処率（%）"),
        ],
    );
    for isp in data.isps.iter().filter(|i| view.isp.as_ref().is_none_or(|h| h == &i.handle)) {
        let (infected, vulnerable) = figures.per_isp.get(&isp.handle).copied().unwrap_or_default();
        // The cases the view holds (time range, ISP, device type, botnet), so a row's figures agree.
        let group = figures.cases_per_isp.get(&isp.handle).copied().unwrap_or_default();
        table.row(vec![
            isp.handle.clone().into(),
            isp.name.clone().into(),
            infected.value.into(),
            vulnerable.value.into(),
            group.notified.into(),
            group.fixed.into(),
            group.reported_fixed.into(),
            group.not_fixed.into(),
            Cell::Num((group.remediation_rate() * 10_000.0).round() / 100.0),
        ]);
    }
    let mut rates = Table::new(
        "remediation_rate",
        lang.pick("Remediation rate per ISP (%)", "ISP別の対処率（%）"),
        &["ISP", lang.pick("remediation rate (%)", "対処率（%）")],
    );
    for row in &table.rows {
        rates.row(vec![row[0].clone(), row[8].clone()]);
    }
    page.blocks.push(Block::Table(table));
    if figures.estimated() {
        page.html(format!("<p class=\"note\">{}</p>", lang.pick(ESTIMATED_EN, ESTIMATED_JA)));
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, rates));
    Ok(page.respond(view.csv()))
}

/// `GET /coverage`: what the survey and the telescope covered.
pub async fn coverage(
    State(state): State<AppState>,
    Dashboard { view, viewer }: Dashboard,
) -> Result<Response, ApiError> {
    let lang = view.lang();
    let rolled_up = Coverage::rolled_up(&view);
    let mut kinds = vec![Kind::DarknetDay];
    if !rolled_up {
        kinds.extend([Kind::Service, Kind::Finding, Kind::Activity, Kind::Cnc]);
    }
    let data = Data::load(&state, &kinds, &view).await?;
    let coverage = if rolled_up { Coverage::of_rollups(&state, &view).await? } else { Coverage::of_data(&data, &view) };
    let mut page =
        Page::new("/coverage", "/coverage", lang.pick("Coverage", "観測範囲").into(), lang, view.state.clone());
    viewer.sign(&mut page);
    page.html(filter_form(&state, &view, "/coverage").await?);
    page.html(format!("<h2>{}</h2>", lang.pick("Survey", "脆弱機器調査")));
    let mut table = Table::new(
        "survey_protocols",
        lang.pick("Services that answered the survey, by protocol", "調査に応答したサービス（プロトコル別）"),
        &[
            lang.pick("protocol", "プロトコル"),
            lang.pick("services", "サービス数"),
            lang.pick("hosts", "ホスト数"),
            lang.pick("findings", "検出数"),
        ],
    );
    for (protocol, (services, hosts, findings)) in &coverage.protocols {
        table.row(vec![protocol.clone().into(), (*services).into(), hosts.value.into(), (*findings).into()]);
    }
    page.blocks.push(Block::Chart(ChartKind::Bars, table));
    page.html(format!("<h2>{}</h2>", lang.pick("Darknet telescope", "ダークネット観測")));
    let mut table = Table::new(
        "telescope_days",
        lang.pick("Darknet days observed", "観測日ごとの集計"),
        &[
            "date",
            lang.pick("packets", "パケット数"),
            lang.pick("sources", "送信元"),
            lang.pick("infected sources", "感染ホスト"),
            lang.pick("research scanners", "研究用スキャナ"),
            lang.pick("DDoS victims", "DDoS被害"),
        ],
    );
    let mut days: Vec<&botscope_model::DarknetDay> = data.days.iter().collect();
    days.sort_by(|a, b| a.date.cmp(&b.date).then(a.sensor.cmp(&b.sensor)));
    for d in days {
        table.row(vec![
            d.date.clone().into(),
            d.packets.into(),
            d.sources.into(),
            d.infected_sources.into(),
            d.research_scanner_sources.into(),
            d.ddos_victims.into(),
        ]);
    }
    page.blocks.push(Block::Table(table));
    page.html(format!("<h2>{}</h2>", lang.pick("Sensors", "センサー")));
    let mut table = Table::new(
        "sensors",
        lang.pick("Records per sensor", "センサーごとの記録数"),
        &[
            lang.pick("sensor", "センサー"),
            lang.pick("kind", "種類"),
            lang.pick("records", "件数"),
            lang.pick("latest", "最新"),
        ],
    );
    for ((sensor, kind), (n, latest)) in &coverage.sensors {
        table.row(vec![
            sensor.clone().into(),
            (*kind).into(),
            (*n).into(),
            latest.map(when).unwrap_or_default().into(),
        ]);
    }
    page.blocks.push(Block::Table(table));
    Ok(page.respond(view.csv()))
}
