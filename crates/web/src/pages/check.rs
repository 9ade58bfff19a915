//! The public self-check (`/check`): was the visitor's own connection seen infected or vulnerable?
//!
//! It answers only for the address the request comes from (or, behind a trusted proxy, the address
//! the proxy names); there is no parameter to ask about another address, so the page cannot reveal
//! anything about anyone else. Answers are rate limited per address. The words follow the advice
//! that alerts fail when people cannot understand them: say what was seen, what harm it does to
//! them and to others, and what to do, step by step, in the words devices use.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use botscope_model::{ActivityClass, FindingIssue, Kind, Record};
use botscope_store::{RecordQuery, Store, StoreError, all_records};

use super::{Area, Lang, Page, ViewState, error_page, esc};
use crate::AppState;
use crate::error::ApiError;

/// A device model's remediation guide, in both languages.
#[derive(Debug, Clone, Default)]
pub struct Guide {
    /// Manufacturer, as findings name it.
    pub vendor: String,
    /// Model, as findings name it.
    pub model: String,
    /// Steps in English.
    pub en: Vec<String>,
    /// Steps in Japanese.
    pub ja: Vec<String>,
}

/// Remediation guides by vendor and model.
#[derive(Debug, Clone, Default)]
pub struct Guides(pub HashMap<(String, String), Guide>);

impl Guides {
    /// Guides from a list.
    pub fn new(guides: impl IntoIterator<Item = Guide>) -> Guides {
        Guides(guides.into_iter().map(|g| ((g.vendor.clone(), g.model.clone()), g)).collect())
    }
}

/// How long the self-check's per-address count runs.
const CHECK_WINDOW_MS: i64 = 60_000;

/// Whether `ip` may have another answer now: `per_minute` per address (an IPv6 visitor's whole
/// /64) and minute. Counted in the store, so that replicas behind a load balancer count one
/// visitor once, not once each.
pub async fn allow_check(store: &impl Store, ip: IpAddr, per_minute: u32, now_ms: i64) -> Result<bool, StoreError> {
    let hits = store.count_hit(&format!("check:{}", limit_key(ip)), CHECK_WINDOW_MS, now_ms).await?;
    Ok(hits <= u64::from(per_minute))
}

/// This replica's own count per address and minute, asked before the store: a visitor over the
/// limit here is refused without a write, so a flood of requests costs the store at most
/// `per_minute` writes per address, minute and replica.
#[derive(Clone, Default)]
pub struct LocalCheckLimit(std::sync::Arc<std::sync::Mutex<HashMap<IpAddr, (i64, u32)>>>);

impl LocalCheckLimit {
    /// Counts a request; false when this replica alone has seen `per_minute` this minute.
    pub fn allow(&self, ip: IpAddr, per_minute: u32, now_ms: i64) -> bool {
        const MAX_TRACKED: usize = 100_000;
        let ip = limit_key(ip);
        let Ok(mut seen) = self.0.lock() else { return true };
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&ip) {
            seen.retain(|_, (start, _)| now_ms - *start < CHECK_WINDOW_MS);
            if seen.len() >= MAX_TRACKED {
                // Full of live counts: let the store decide, it counts everyone.
                return true;
            }
        }
        let slot = seen.entry(ip).or_insert((now_ms, 0));
        if now_ms - slot.0 >= CHECK_WINDOW_MS {
            *slot = (now_ms, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        slot.1 <= per_minute
    }
}

/// The visitor's address: the peer's, or, when the peer is a trusted proxy, the address its
/// header names. `None` when a trusted proxy did not say who the visitor is: answering for the
/// proxy would tell everyone behind it the same thing.
pub fn visitor(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
    let config = &state.pages;
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; records hold a.b.c.d.
    let peer = peer.to_canonical();
    let Some(name) = &config.client_ip_header else { return Some(peer) };
    if !config.trusted_proxies.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    // Every line of the header, in order: some proxies add a line instead of appending to one.
    let lines: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    forwarded_client(&lines.join(","), &config.trusted_proxies)
}

/// The client a forwarded-for value names: hops are listed left to right and each proxy appends
/// the address it received from, so walking from the right past our own trusted proxies, the
/// first other address is the visitor (anything further left is what the client claimed).
pub fn forwarded_client(value: &str, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    for hop in value.rsplit(',').take(64) {
        let ip = hop.trim().parse::<IpAddr>().ok()?.to_canonical();
        if !trusted.iter().any(|net| net.contains(&ip)) {
            return Some(ip);
        }
    }
    None
}

/// Rate-limit key: an IPv6 host owns its whole /64, so it counts as one.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

fn issue_text(issue: FindingIssue, service: &str, port: u16, lang: Lang) -> String {
    match (issue, lang) {
        (FindingIssue::DefaultCredential, Lang::En) => format!(
            "A device on your connection let us sign in with an ID and password that are set at the factory or easy to guess (on its {service} service, port {port}). Criminals try exactly these to take devices over."
        ),
        (FindingIssue::DefaultCredential, Lang::Ja) => format!(
            "あなたの回線につながっている機器に、工場出荷時のままか推測しやすいID・パスワードでログインできました（{service}、ポート{port}）。犯罪者はまさにこうしたID・パスワードを試して機器を乗っ取ります。"
        ),
        (FindingIssue::NoAuthentication, Lang::En) => format!(
            "A device on your connection can be used by anyone, without any ID or password (its {service} service, port {port})."
        ),
        (FindingIssue::NoAuthentication, Lang::Ja) => format!(
            "あなたの回線につながっている機器が、ID・パスワードなしで誰でも操作できる状態でした（{service}、ポート{port}）。"
        ),
        (FindingIssue::ExposedManagement, Lang::En) => format!(
            "A device's management function can be reached from the internet ({service}, port {port}). It should only be reachable from inside your home."
        ),
        (FindingIssue::ExposedManagement, Lang::Ja) => format!(
            "機器の管理機能がインターネットから接続できる状態でした（{service}、ポート{port}）。本来は家庭内からだけ使えるようにするものです。"
        ),
        (FindingIssue::OutdatedFirmware, Lang::En) => {
            "A device runs old firmware (its built-in software); the maker has released a newer version with fixes.".to_string()
        }
        (FindingIssue::OutdatedFirmware, Lang::Ja) => {
            "機器のファームウェア（機器に組み込まれたソフトウェア）が古いままです。メーカーから修正を含む新しい版が出ています。".to_string()
        }
        (FindingIssue::EolDevice, Lang::En) => {
            "A device is a model its maker no longer supports (end of life): it will get no more security fixes.".to_string()
        }
        (FindingIssue::EolDevice, Lang::Ja) => {
            "機器がメーカーのサポートが終了した機種（EOL）で、今後セキュリティの修正が提供されません。".to_string()
        }
    }
}

fn steps(items: &[&str]) -> String {
    let mut out = String::from("<ol class=\"steps\">");
    for item in items {
        let _ = write!(out, "<li>{}</li>", esc(item));
    }
    out.push_str("</ol>");
    out
}

fn glossary(lang: Lang) -> String {
    let entries: [(&str, &str); 5] = match lang {
        Lang::En => [
            (
                "ID and password",
                "What you type to sign in to a device's settings. Devices also call them user name, login, administrator password, or on Wi-Fi routers sometimes \"key\". The ID and password for the settings are not the same as the Wi-Fi key.",
            ),
            (
                "Wi-Fi key (network key, passphrase)",
                "The password of your wireless network, often printed on a sticker next to the SSID.",
            ),
            ("SSID", "The name of your wireless network, the one you pick on your phone."),
            (
                "Firmware",
                "The software built into a device. Makers release new versions that fix security holes; the settings page usually has an \"update\" or \"firmware\" section.",
            ),
            (
                "EOL (end of life)",
                "The maker no longer supports the model and will not fix new security holes. Such a device should be replaced.",
            ),
        ],
        Lang::Ja => [
            (
                "ID・パスワード",
                "機器の設定画面にログインするときに入力するもの。機器によっては「ユーザー名」「ログインID」「管理者パスワード」、Wi-Fiルーターでは「キー」と書かれていることもあります。設定画面用のID・パスワードとWi-Fiの暗号化キーは別物です。",
            ),
            (
                "Wi-Fiの暗号化キー（ネットワークキー、パスフレーズ）",
                "無線LANのパスワード。SSIDと並んで本体のシールに書かれていることが多いものです。",
            ),
            ("SSID", "無線LANの名前。スマートフォンでWi-Fiを選ぶときに表示されるものです。"),
            (
                "ファームウェア",
                "機器に組み込まれているソフトウェア。メーカーはセキュリティの穴を直した新しい版を公開します。設定画面の「更新」「ファームウェア」の項目から更新できることが多いです。",
            ),
            (
                "EOL（サポート終了）",
                "メーカーがその機種のサポートを終えており、新たな穴が見つかっても直されない状態。買い替えが必要です。",
            ),
        ],
    };
    let mut out = format!("<section class=\"glossary\"><h2>{}</h2><dl>", lang.pick("Words used here", "用語の説明"));
    for (term, meaning) in entries {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(term), esc(meaning));
    }
    out.push_str("</dl></section>");
    out
}

/// `GET /check`.
pub async fn check(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let lang = Lang::choose(query.get("lang").map(String::as_str), &headers);
    let Some(ip) = visitor(&state, peer.ip(), &headers) else {
        tracing::warn!(proxy = %peer.ip(), "a trusted proxy sent no usable client address for the self-check");
        return Ok(error_page(
            lang,
            StatusCode::BAD_REQUEST,
            lang.pick("Your address could not be determined.", "接続元のアドレスを確認できませんでした。"),
        ));
    };
    let (per_minute, now) = (state.pages.check_per_minute, crate::now_ms());
    if !state.check_local.allow(ip, per_minute, now) || !allow_check(&state.store, ip, per_minute, now).await? {
        return Ok(error_page(
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            lang.pick(
                "Too many checks from your address; please try again in a minute.",
                "短時間に何度も確認が行われました。1分ほどしてからもう一度お試しください。",
            ),
        ));
    }
    let days = state.pages.check_days;
    let now = chrono::Utc::now();
    let since = chrono::Duration::try_days(i64::from(days))
        .and_then(|span| now.checked_sub_signed(span))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    // Every record of the address in the window (one address has few), so the verdict and the
    // dates do not depend on which records one page of results happened to hold.
    let records = |kind| RecordQuery { kind: Some(kind), ip: Some(ip), since: Some(since), ..Default::default() };
    let infected: Vec<_> = all_records(&state.store, records(Kind::Activity))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<botscope_model::SourceActivity>)
        .filter(|a| a.classification == ActivityClass::Infected)
        .collect();
    let findings: Vec<_> = all_records(&state.store, records(Kind::Finding))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<botscope_model::Finding>)
        .collect();

    let mut view = ViewState::default();
    view.pairs.insert("lang".into(), lang.code().into());
    let mut page =
        Page::new("/check", "/check", lang.pick("Is my connection safe?", "あなたの回線は大丈夫？").into(), lang, view);
    page.area = Area::Public;
    page.html(format!(
        "<p class=\"who\">{} <strong id=\"visitor\">{}</strong>. {}</p>",
        lang.pick("We checked the address you are connecting from:", "あなたが今接続しているアドレスを確認しました:"),
        esc(&ip.to_string()),
        match lang {
            Lang::En => format!("We looked at the last {days} days. We only ever show this for your own address."),
            Lang::Ja =>
                format!("過去{days}日間の記録を調べました。この結果はあなた自身のアドレスについてだけ表示されます。"),
        }
    ));

    let verdict = if !infected.is_empty() {
        "infected"
    } else if !findings.is_empty() {
        "vulnerable"
    } else {
        "clean"
    };
    if !infected.is_empty() {
        let first = infected.iter().map(|a| a.first_seen).min().expect("non-empty");
        let last = infected.iter().map(|a| a.last_seen).max().expect("non-empty");
        let mirai = infected.iter().any(|a| a.mirai_packets > 0);
        page.html(format!(
            "<section id=\"verdict\" class=\"verdict bad\" data-verdict=\"infected\"><h2>{}</h2><p>{}</p>",
            lang.pick("A device on your connection seems to be infected", "あなたの回線の機器がマルウェアに感染しているおそれがあります"),
            esc(&match lang {
                Lang::En => format!(
                    "Between {} and {} (UTC), a device using your connection sent the kind of traffic that infected devices send when they look for new victims{}.",
                    first.format("%Y-%m-%d"),
                    last.format("%Y-%m-%d"),
                    if mirai { ", with the fingerprint of the Mirai malware" } else { "" }
                ),
                Lang::Ja => format!(
                    "{}から{}（協定世界時）にかけて、あなたの回線の機器から、感染した機器が次の標的を探すときの通信{}が観測されました。",
                    first.format("%Y年%m月%d日"),
                    last.format("%Y年%m月%d日"),
                    if mirai { "（マルウェアMiraiの特徴を持つもの）" } else { "" }
                ),
            })
        ));
        page.html(format!(
            "<h3>{}</h3><p>{}</p><h3>{}</h3>{}</section>",
            lang.pick("Why it matters", "何が危ないのか"),
            esc(lang.pick(
                "An infected device is controlled by criminals. They use it together with many others to attack web sites and services (DDoS), to break into more devices, and it can spy on what passes through your network. It can also slow your connection.",
                "感染した機器は犯罪者に操られます。ほかの多数の機器と一緒に、ウェブサイトやサービスへの攻撃（DDoS攻撃）や、さらに別の機器への侵入に使われ、あなたのネットワークを通る通信をのぞき見されるおそれもあります。回線が遅くなることもあります。"
            )),
            lang.pick("What to do", "どうすればよいか"),
            steps(&match lang {
                Lang::En => [
                    "Find the devices connected to the internet at home: router, cameras, video recorders, network storage, smart TVs.",
                    "Turn each one off and on again (unplug it for 30 seconds). This removes malware like Mirai that lives only in memory, but it comes back if nothing else changes.",
                    "Right after, sign in to each device's settings and change the ID and password to ones only you know (at least 12 characters, not used elsewhere).",
                    "Update the firmware to the newest version; if the maker no longer supports the model, replace it.",
                    "Turn off remote management and Telnet in the settings if you do not need them.",
                    "If you are unsure, contact your internet provider: they received the same information and can help.",
                ],
                Lang::Ja => [
                    "家庭でインターネットにつながっている機器（ルーター、防犯カメラ、録画機、ネットワークストレージ、スマートテレビなど）を確認します。",
                    "それぞれの電源を入れ直します（電源プラグを抜いて30秒待つ）。Miraiのようにメモリ上だけにいるマルウェアは消えますが、ほかに何も変えないとまた感染します。",
                    "すぐに各機器の設定画面にログインし、ID・パスワードを自分だけが知るもの（12文字以上、ほかで使っていないもの）に変更します。",
                    "ファームウェアを最新の版に更新します。メーカーのサポートが終了した機種は買い替えます。",
                    "使っていなければ、設定画面でリモート管理やTelnetを無効にします。",
                    "分からないときは契約しているインターネット接続事業者に相談してください。事業者にも同じ情報が届いています。",
                ],
            })
        ));
    }
    if !findings.is_empty() {
        let mut seen: BTreeSet<(String, u16, &'static str)> = BTreeSet::new();
        let mut items = String::new();
        let mut models: Vec<(String, String)> = Vec::new();
        for f in &findings {
            if seen.insert((f.service.as_str().to_string(), f.port, f.issue.as_str())) {
                let _ = write!(items, "<li>{}</li>", esc(&issue_text(f.issue, f.service.as_str(), f.port, lang)));
            }
            if let Some(device) = &f.device
                && let (Some(vendor), Some(model)) = (&device.vendor, &device.model)
                && !models.contains(&(vendor.clone(), model.clone()))
            {
                models.push((vendor.clone(), model.clone()));
            }
        }
        let class = if infected.is_empty() { "verdict warn" } else { "warn" };
        let id = if infected.is_empty() { " id=\"verdict\" data-verdict=\"vulnerable\"" } else { " id=\"vulnerable\"" };
        page.html(format!(
            "<section{id} class=\"{class}\"><h2>{}</h2><ul>{items}</ul><h3>{}</h3><p>{}</p>",
            lang.pick("A device on your connection is easy to take over", "あなたの回線の機器が乗っ取られやすい状態です"),
            lang.pick("Why it matters", "何が危ないのか"),
            esc(lang.pick(
                "Malware such as Mirai looks for exactly such devices all the time and takes them over within minutes; they are then used to attack others and can expose your own network.",
                "Miraiなどのマルウェアは、こうした機器を常に探しており、見つけると数分で乗っ取ります。乗っ取られた機器は他者への攻撃に使われ、あなた自身のネットワークも危険にさらされます。"
            )),
        ));
        let mut guided = false;
        for key in &models {
            if let Some(guide) = state.pages.guides.0.get(key) {
                guided = true;
                let list: Vec<&str> = match lang {
                    Lang::En => guide.en.iter().map(String::as_str).collect(),
                    Lang::Ja => guide.ja.iter().map(String::as_str).collect(),
                };
                page.html(format!(
                    "<h3 class=\"guide-title\">{} {} {}</h3>{}",
                    lang.pick("What to do with your", "お使いの"),
                    esc(&format!("{} {}", guide.vendor, guide.model)),
                    lang.pick("", "の対処方法"),
                    steps(&list)
                ));
            }
        }
        if !guided {
            page.html(format!(
                "<h3>{}</h3>{}",
                lang.pick("What to do", "どうすればよいか"),
                steps(&match lang {
                    Lang::En => [
                        "Find the device: usually the router, a camera or a video recorder.",
                        "Sign in to its settings and change the ID and password to ones only you know (at least 12 characters, not used elsewhere).",
                        "Update the firmware to the newest version; replace the device if the maker no longer supports it.",
                        "Turn off remote management and Telnet in the settings if you do not need them.",
                    ],
                    Lang::Ja => [
                        "該当する機器を探します。多くはルーター、防犯カメラ、録画機です。",
                        "設定画面にログインし、ID・パスワードを自分だけが知るもの（12文字以上、ほかで使っていないもの）に変更します。",
                        "ファームウェアを最新の版に更新します。メーカーのサポートが終了した機種は買い替えます。",
                        "使っていなければ、設定画面でリモート管理やTelnetを無効にします。",
                    ],
                })
            ));
        }
        page.html("</section>");
    }
    if verdict == "clean" {
        page.html(format!(
            "<section id=\"verdict\" class=\"verdict good\" data-verdict=\"clean\"><h2>{}</h2><p>{}</p><p>{}</p></section>",
            lang.pick("Nothing was seen from your connection", "あなたの回線からは問題は見つかりませんでした"),
            esc(&match lang {
                Lang::En => format!("In the last {days} days we saw no sign of an infected device on your connection, and our survey found no device on it that is easy to take over."),
                Lang::Ja => format!("過去{days}日間、あなたの回線で感染した機器の兆候は観測されず、調査でも乗っ取られやすい機器は見つかりませんでした。"),
            }),
            esc(lang.pick(
                "This is good news, though no check sees everything. Keep your devices' firmware up to date and use your own ID and password on each of them.",
                "安心してよい結果ですが、すべてを確認できるわけではありません。機器のファームウェアを最新に保ち、それぞれに自分で決めたID・パスワードを設定しておきましょう。"
            ))
        ));
    }
    page.html(glossary(lang));
    Ok(page.respond(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn the_first_hop_right_of_our_proxies_is_the_client() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(forwarded_client("198.51.100.7, 127.16.4.21", &proxies), "127.16.4.21".parse().ok());
        assert_eq!(forwarded_client("1.2.3.4, 127.16.4.21, 10.0.0.5, 10.0.0.6", &proxies), "127.16.4.21".parse().ok());
        assert_eq!(forwarded_client("::ffff:127.16.4.21", &proxies), "127.16.4.21".parse().ok());
        assert_eq!(forwarded_client("2001:db8::1", &proxies), "2001:db8::1".parse().ok());
        assert_eq!(forwarded_client("127.16.4.21, unknown", &proxies), None);
        assert_eq!(forwarded_client("10.0.0.5", &proxies), None, "only proxies: nobody named");
        assert_eq!(forwarded_client("", &proxies), None);
    }

    async fn limiter_store() -> (tempfile::TempDir, botscope_store::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("limits.db"), 1).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn an_ipv6_host_is_limited_as_its_whole_64() {
        let (_dir, store) = limiter_store().await;
        let (a, b): (IpAddr, IpAddr) = ("2001:db8::1".parse().unwrap(), "2001:db8::ffff:2".parse().unwrap());
        assert!(allow_check(&store, a, 1, 0).await.unwrap());
        assert!(!allow_check(&store, b, 1, 1).await.unwrap());
    }

    proptest::proptest! {
        #[test]
        fn a_forwarded_header_names_its_last_untrusted_hop_whatever_came_before(junk in ".{0,200}", last in proptest::num::u32::ANY) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(last));
            let none: Vec<ipnet::IpNet> = Vec::new();
            proptest::prop_assert_eq!(forwarded_client(&format!("{junk},{ip}"), &none), Some(ip));
            proptest::prop_assert_eq!(forwarded_client(&format!("{ip},{junk}x"), &none), None);
        }
    }

    #[test]
    fn the_local_count_refuses_without_asking_the_store_once_over() {
        let local = LocalCheckLimit::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap());
        assert!((0..3).all(|at| local.allow(a, 3, at)));
        assert!(!local.allow(a, 3, 3));
        assert!(local.allow(b, 3, 4));
        assert!(!local.allow("2001:db8::2".parse().unwrap(), 1, 5), "the same /64, over a limit of 1");
        assert!(local.allow(a, 3, CHECK_WINDOW_MS + 1), "a minute later");
    }

    #[tokio::test]
    async fn the_limiter_counts_per_address_and_minute() {
        let (_dir, store) = limiter_store().await;
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for at in 0..3 {
            assert!(allow_check(&store, a, 3, at).await.unwrap());
        }
        assert!(!allow_check(&store, a, 3, 3).await.unwrap());
        assert!(allow_check(&store, b, 3, 4).await.unwrap());
        assert!(allow_check(&store, a, 3, CHECK_WINDOW_MS + 1).await.unwrap(), "a minute later");
    }
}
