//! Botnets: the list, and one botnet's members over time, C&C timeline, graph and lifecycle.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use botscope_model::Kind;

use super::dashboard::{Dashboard, filter_form};
use super::data::{Data, endpoint, when};
use super::{Block, Cell, ChartKind, Page, Table, error_page, esc, figure, liveness_word, svg};
use crate::AppState;
use crate::error::ApiError;

/// How many bots the graph draws at most (the rest are counted).
const GRAPH_BOTS: usize = 120;

/// `GET /botnets`.
pub async fn list(State(state): State<AppState>, Dashboard { view, viewer }: Dashboard) -> Result<Response, ApiError> {
    let lang = view.lang();
    let data = Data::load(&state, &[Kind::Botnet, Kind::Liveness], &view).await?;
    let mut page =
        Page::new("/botnets", "/botnets", lang.pick("Botnets", "ボットネット").into(), lang, view.state.clone());
    viewer.sign(&mut page);
    page.html(filter_form(&state, &view, "/botnets").await?);
    let latest = data.latest_liveness();
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
    for botnet in &data.botnets {
        let current = botnet.cnc.iter().max_by_key(|c| c.last_seen);
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
