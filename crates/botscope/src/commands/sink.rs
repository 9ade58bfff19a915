//! Where a sensor's records go, from its flags: the local store (`--db`), the centre (`--center URL
//! --token T`, with its spool), or both. The sinks themselves live in `botscope_deliver`.

use std::path::PathBuf;

use botscope_deliver::{CenterConfig, CenterSink, Destinations, StoreSink};

/// The `--center`, `--token` and `--spool` flags every sensor shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CenterArgs {
    /// Also send the records to a botscope centre (`botscope serve`), e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL", requires = "token", env = "BOTSCOPE_CENTER")]
    pub center: Option<String>,

    /// The token for --center (`botscope token create --role sensor`; survey workers that fetch
    /// re-survey cases need --role surveyor)
    #[arg(long, value_name = "TOKEN", env = "BOTSCOPE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Where batches the centre has not acknowledged wait (sent first on the next try or run)
    #[arg(long, value_name = "DIR", default_value = "botscope-spool")]
    pub spool: PathBuf,

    /// At the end of a run, how long to keep retrying spooled batches before leaving them for the next run
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::duration_arg)]
    pub center_wait: u64,
}

/// Refuses --center without --sensor: records are told apart by their sensor.
pub fn require_sensor(args: &CenterArgs, sensor: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.center.is_none() || sensor.is_some_and(|s| !s.trim().is_empty()),
        "--center needs --sensor NAME: records are told apart by their sensor (two ISPs reporting the same \
         server in the same window are two records only if they carry different names)"
    );
    Ok(())
}

/// The sinks the flags ask for: the store (`--db`), the centre (`--center URL --token T`), or both.
/// `sensor` is the command's --sensor: the centre needs it, so two sensors' records never share ids.
pub async fn open(
    settings: &crate::settings::Settings,
    db_given: bool,
    center: &CenterArgs,
    sensor: Option<&str>,
) -> anyhow::Result<Destinations> {
    let center = match (&center.center, &center.token) {
        (Some(url), Some(token)) => Some(CenterSink::new(&CenterConfig {
            url: url.clone(),
            token: token.clone(),
            spool: center.spool.clone(),
            wait: std::time::Duration::from_secs(center.center_wait),
            sensor: sensor.map(String::from),
        })?),
        _ => None,
    };
    let store = if db_given { Some(StoreSink { store: settings.open_store().await?, stored: 0 }) } else { None };
    Ok(Destinations { store, center })
}
