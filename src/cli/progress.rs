//! A spinner on stderr for long work (captures and analyses that take more
//! than about a second), only when stderr is a terminal. It appears after a
//! delay, so quick commands never show it, and it is cleared when the guard
//! is dropped.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Shows "MESSAGE (elapsed)" with a spinner after [`DELAY`] until dropped.
pub struct Progress {
    done: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long work may run before the spinner appears.
pub const DELAY: Duration = Duration::from_millis(1000);

impl Progress {
    pub fn start(message: impl Into<String>) -> Progress {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        if !std::io::stderr().is_terminal() {
            return Progress { done, thread: None };
        }
        let message = message.into();
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*d;
            let Ok(g) = lock.lock() else { return };
            let Ok((g, _)) = cv.wait_timeout_while(g, DELAY, |done| !*done) else {
                return;
            };
            if *g {
                return;
            }
            drop(g);
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                pb.set_style(style);
            }
            pb.set_message(message);
            pb.enable_steady_tick(Duration::from_millis(100));
            let Ok(g) = lock.lock() else { return };
            let _done = cv.wait_while(g, |done| !*done);
            pb.finish_and_clear();
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let (lock, cv) = &*self.done;
        if let Ok(mut g) = lock.lock() {
            *g = true;
        }
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
