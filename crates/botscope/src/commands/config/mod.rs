//! `botscope config check`

mod args;
pub use args::*;

use std::process::ExitCode;

use crate::config::Source;
use crate::settings::Settings;

pub fn run(command: ConfigCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check => {
            let origin = match &settings.source {
                Source::Defaults => "built-in defaults (no configuration file)".to_string(),
                Source::File(path) => path.display().to_string(),
            };
            let mut shown = settings.config.clone();
            shown.store.url = botscope_store::redact(&shown.store.url);
            println!("# configuration is valid; read from {origin}");
            println!("# effective values, with environment and flags applied:");
            print!("{}", toml::to_string_pretty(&shown)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
