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

/// Draws a session's [`ReadProgress`] as a bar per input until dropped; nothing when not `visible`.
pub struct ReadWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts drawing `progress`; returns the watch (drop it when the session ends) and the progress
/// to hand to the session (`None` when nobody watches, so the session counts nothing).
pub fn watch_reads(visible: bool) -> (ReadWatch, Option<std::sync::Arc<botscope_input::ReadProgress>>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    if !visible {
        return (ReadWatch { stop, thread: None }, None);
    }
    let progress = std::sync::Arc::new(botscope_input::ReadProgress::default());
    let thread = std::thread::spawn({
        let (stop, progress) = (stop.clone(), progress.clone());
        move || {
            let mut current = 0;
            let mut bar: Option<ProgressBar> = None;
            while !stop.load(Ordering::Relaxed) {
                let seen = progress.snapshot();
                if seen.input != current {
                    if let Some(old) = bar.take() {
                        old.finish_and_clear();
                    }
                    current = seen.input;
                    bar = Some(bytes(true, seen.total, format!("reading {}", seen.label)));
                }
                if let Some(bar) = &bar {
                    bar.set_position(seen.read);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        }
    });
    (ReadWatch { stop, thread: Some(thread) }, Some(progress))
}

impl Drop for ReadWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
