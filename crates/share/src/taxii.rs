//! TAXII 2.1 as botscope speaks it from either side: the collections the centre serves (the shared
//! one and one per ISP), publishing a STIX bundle into one, and pulling a partner's collection page
//! by page. The centre's HTTP routes (`botscope_web::taxii`) serve what is published here.
//!
//! A partner's server is outside botscope's control: every page is read within a size cap, the
//! number of pages is bounded, and a reply that is not a TAXII envelope is a clear error.

use std::time::Duration;

use botscope_model::{Record, TaxiiObject, Timestamp};
use serde_json::Value;

/// The collection every token may read: what the centre publishes at TLP:WHITE, GREEN or AMBER.
pub const SHARED_COLLECTION: &str = "5b2f8c1e-7d3a-4e9b-8f60-2a1c3d4e5f6a";

const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x1d2c_3b4a_5f6e_4a7d_9b8c_0e1f_2a3b_4c5d);

/// The TAXII 2.1 media type.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The id of an ISP's own collection.
pub fn isp_collection(handle: &str) -> String {
    uuid::Uuid::new_v5(&NAMESPACE, format!("isp|{handle}").as_bytes()).to_string()
}

/// A bundle's objects as records of `collection`, added now by the centre. Versions already
/// published keep their first `date_added` when stored (records have stable ids).
pub fn publication(bundle: &Value, collection: &str, now: Timestamp) -> Vec<Record> {
    bundle["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|object| {
            let mut record = Record::TaxiiObject(TaxiiObject {
                id: None,
                collection: collection.to_string(),
                date_added: now,
                added_by: "centre".into(),
                object: object.clone(),
            });
            record.ensure_id();
            record
        })
        .collect()
}

/// How to authenticate to a partner's server. Its `Debug` names the kind only, never a secret.
#[derive(Clone)]
pub enum Auth {
    /// Nothing.
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        user: String,
        /// Password, if any.
        password: Option<String>,
    },
    /// A bearer token (a botscope centre's token).
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <hidden> }}"),
            Auth::Bearer(_) => f.write_str("Bearer(<hidden>)"),
        }
    }
}

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// The server's discovery URL or an API root.
    pub url: String,
    /// The collection's id.
    pub collection: String,
    /// Credentials.
    pub auth: Auth,
    /// Only objects added after this (the last pull's `X-TAXII-Date-Added-Last`).
    pub added_after: Option<String>,
    /// Most bytes of one reply.
    pub max_page_bytes: usize,
    /// Most bytes of all replies of one pull together (everything pulled is held until imported).
    pub max_total_bytes: usize,
    /// Most pages of one pull.
    pub max_pages: usize,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl PullConfig {
    /// Defaults for `url` and `collection`: 16 MiB per page, 256 MiB per pull, 100,000 pages,
    /// 120 s per request.
    pub fn new(url: &str, collection: &str) -> PullConfig {
        PullConfig {
            url: url.to_string(),
            collection: collection.to_string(),
            auth: Auth::None,
            added_after: None,
            max_page_bytes: 16 << 20,
            max_total_bytes: 256 << 20,
            max_pages: 100_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The API root used.
    pub root: String,
    /// Every object of every page, in order.
    pub objects: Vec<Value>,
    /// The server's `X-TAXII-Date-Added-Last` of the last page, to pull from next time.
    pub last_added: Option<String>,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The request could not be made or answered.
    #[error("{url}: {reason}")]
    Http {
        /// What was asked for.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// What was asked for.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of what it said.
        body: String,
    },
    /// The reply is not what TAXII sends.
    #[error("{url}: {reason}")]
    NotTaxii {
        /// What was asked for.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server kept saying there is more past the page bound, or gave the same cursor twice.
    #[error("the server kept saying there is more after {0} pages; stopping")]
    EndlessPages(usize),
    /// The pull passed its total size bound; what came so far is not imported.
    #[error(
        "the collection's pages passed the bound of {0} bytes for one pull; pull again with added_after set, or raise the bound"
    )]
    TooMuch(usize),
}

fn client(config: &PullConfig) -> Result<reqwest::Client, PullError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(config.timeout)
        .build()
        .map_err(|e| PullError::Http { url: config.url.clone(), reason: e.to_string() })
}

/// The API root `config.url` leads to: the discovery's default root when it is a discovery URL,
/// else the URL itself.
pub async fn resolve_root(config: &PullConfig) -> Result<String, PullError> {
    api_root(&client(config)?, config).await
}

/// Pulls every object of the collection added after `config.added_after`.
pub async fn pull(config: &PullConfig) -> Result<Pulled, PullError> {
    let client = client(config)?;
    let root = api_root(&client, config).await?;
    let objects_url = format!(
        "{}collections/{}/objects/",
        if root.ends_with('/') { root.clone() } else { format!("{root}/") },
        config.collection
    );
    let mut objects = Vec::new();
    let mut next: Option<String> = None;
    let mut cursors = std::collections::HashSet::new();
    let mut total = 0usize;
    let mut last_added = None;
    for page in 0.. {
        if page >= config.max_pages {
            return Err(PullError::EndlessPages(page));
        }
        let mut url = reqwest::Url::parse(&objects_url)
            .map_err(|e| PullError::NotTaxii { url: objects_url.clone(), reason: format!("not a URL: {e}") })?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", "1000");
            if let Some(after) = &config.added_after {
                query.append_pair("added_after", after);
            }
            if let Some(cursor) = &next {
                query.append_pair("next", cursor);
            }
        }
        let (headers, body, size) = get_json(&client, url.as_str(), config).await?;
        total += size;
        if total > config.max_total_bytes {
            return Err(PullError::TooMuch(config.max_total_bytes));
        }
        if let Some(last) = headers.get("x-taxii-date-added-last").and_then(|v| v.to_str().ok()) {
            last_added = Some(last.to_string());
        }
        objects.extend(body["objects"].as_array().cloned().unwrap_or_default());
        match (body["more"].as_bool(), body["next"].as_str()) {
            // A cursor the server already gave would walk the same pages again without end.
            (Some(true), Some(cursor)) if !cursors.insert(cursor.to_string()) => {
                return Err(PullError::EndlessPages(page + 1));
            }
            (Some(true), Some(cursor)) => next = Some(cursor.to_string()),
            _ => break,
        }
    }
    Ok(Pulled { root, objects, last_added })
}

/// The API root to use: the discovery's default when given discovery, else the URL itself.
async fn api_root(client: &reqwest::Client, config: &PullConfig) -> Result<String, PullError> {
    let url = if config.url.ends_with('/') { config.url.clone() } else { format!("{}/", config.url) };
    let (_, discovery, _) = get_json(client, &url, config).await?;
    if discovery.get("api_roots").is_none() {
        return Ok(url);
    }
    let root = discovery["default"]
        .as_str()
        .or_else(|| discovery["api_roots"].get(0).and_then(Value::as_str))
        .ok_or_else(|| PullError::NotTaxii { url: url.clone(), reason: "the discovery names no API root".into() })?;
    // Roots may be given relative to the server.
    if root.starts_with("http") {
        return Ok(root.to_string());
    }
    reqwest::Url::parse(&url)
        .and_then(|base| base.join(root))
        .map(|u| u.to_string())
        .map_err(|e| PullError::NotTaxii { url: url.clone(), reason: format!("API root {root:?}: {e}") })
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    config: &PullConfig,
) -> Result<(reqwest::header::HeaderMap, Value, usize), PullError> {
    let mut request = client.get(url).header("accept", MEDIA_TYPE);
    request = match &config.auth {
        Auth::Basic { user, password } => request.basic_auth(user, password.as_deref()),
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::None => request,
    };
    let http = |reason: String| PullError::Http { url: url.to_string(), reason };
    let response = request.send().await.map_err(|e| http(e.to_string()))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = botscope_deliver::read_capped(response, config.max_page_bytes).await.map_err(|e| http(e.to_string()))?;
    let text = String::from_utf8_lossy(&body);
    let excerpt = || text.chars().take(200).collect::<String>();
    if !status.is_success() {
        return Err(PullError::Status { url: url.to_string(), status: status.as_u16(), body: excerpt() });
    }
    let value = serde_json::from_str(&text).map_err(|_| PullError::NotTaxii {
        url: url.to_string(),
        reason: format!("the reply is not JSON: {}", excerpt()),
    })?;
    Ok((headers, value, body.len()))
}
