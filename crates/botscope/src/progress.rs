//! Progress bars for long work, drawn only where a person is watching.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over bytes when the total is known, a spinner otherwise; invisible when `visible` is false.
pub fn bytes(visible: bool, total: Option<u64>, message: String) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}").expect("valid template"),
        ),
    };
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
