//! `gorescue unit NAME`: find a service's main process over D-Bus, capture its dump as
//! `gorescue pid` does, check the journal's own copy of it, show what the service logged
//! around the onset, and say what systemd did next.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};

use crate::capture::journal::{Filter, Journal};
use crate::cli::UnitArgs;
use crate::dump::render::{ContextFn, Tally};
use crate::dump::{DumpTime, TimeSource};
use crate::error::{Error, exit};
use crate::live::{self, AfterCapture, Hooks, Method, Plan};
use crate::stderr::Stderr;
use crate::target::unit::{Bus, Systemd, UnitError, UnitInfo};

fn unit_error(e: UnitError) -> Error {
    let code = match &e {
        UnitError::InvalidName { .. } => exit::USAGE,
        UnitError::NoSuchUnit { .. } | UnitError::NotRunning { .. } => exit::NO_PROCESS,
        UnitError::NotAService { .. } => exit::REFUSED,
        UnitError::AccessDenied { .. } => exit::NOT_PERMITTED,
        _ => exit::FAILURE,
    };
    let hint = match &e {
        UnitError::NoSuchUnit { .. } => "; check the name with systemctl list-units (or --user)",
        UnitError::NotRunning { .. } => {
            "; there is no process to rescue (gorescue journal NAME reads dumps already logged)"
        }
        UnitError::NotAService { .. } => "; only a service has a main process to rescue",
        UnitError::AccessDenied { .. } => "; run as root (or with --user for your own services)",
        _ => "",
    };
    Error::Unit {
        code,
        message: format!("{e}{hint}"),
    }
}

/// The D-Bus facts and the journal checks of one `gorescue unit` run.
struct UnitHooks {
    unit: UnitInfo,
    user: bool,
    context: Duration,
    /// --keep-running: the service is not ended, so Restart= does not come into it.
    keep_running: bool,
    /// The journal and its position before the signal, when fd 2 is the journal.
    journal: Option<(Journal, Option<String>)>,
}

fn usec_text(us: u64) -> String {
    humantime::format_duration(Duration::from_micros(us)).to_string()
}

impl UnitHooks {
    fn describe_unit(&self) -> String {
        let u = &self.unit;
        let mut s = format!(
            "unit:       {}{} ({}), {}/{}, MainPID {}\n",
            u.id,
            if self.user { " (user)" } else { "" },
            u.description,
            u.active_state,
            u.sub_state,
            u.main_pid
        );
        s += &format!(
            "            invocation {}, Restart={}, control group {}\n",
            u.invocation_id.as_deref().unwrap_or("unknown"),
            u.restart,
            u.control_group
        );
        s += &format!(
            "logging:    StandardError={}, LogRateLimitIntervalSec={}, LogRateLimitBurst={}, \
LogLevelMax={}, LogFilterPatterns={}\n",
            u.effective_standard_error().unwrap_or("unknown"),
            if u.log_rate_limit_interval_usec == 0 {
                "journald's default".to_string()
            } else {
                usec_text(u.log_rate_limit_interval_usec)
            },
            if u.log_rate_limit_burst == 0 {
                "journald's default".to_string()
            } else {
                u.log_rate_limit_burst.to_string()
            },
            if u.log_level_max < 0 {
                "unset".to_string()
            } else {
                u.log_level_max.to_string()
            },
            if u.log_filter_patterns.is_empty() {
                "none".to_string()
            } else {
                u.log_filter_patterns
                    .iter()
                    .map(|(allow, p)| format!("{}{p}", if *allow { "" } else { "~" }))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        );
        if (0..6).contains(&u.log_level_max) {
            s += "note:       LogLevelMax is below info: the journal keeps none of the dump's \
lines (they are logged at info); gorescue captures them itself\n";
        }
        match u.restart.as_str() {
            _ if self.keep_running => {}
            "no" => {}
            r => {
                s += &format!(
                    "note:       Restart={r}: systemd may start the service again after the dump \
(exit status 2)\n"
                )
            }
        }
        s
    }
}

impl Hooks for UnitHooks {
    fn describe(&self) -> String {
        self.describe_unit()
    }

    fn before_signal(&mut self) -> Result<(), Error> {
        // Arm the journal reader before the signal: its position now.
        match Journal::open(self.user) {
            Ok(mut j) => {
                let cursor = j
                    .cursor_now()
                    .map_err(|e| Error::Live(format!("cannot read the journal: {e}")))?;
                self.journal = Some((j, cursor));
            }
            Err(e) => eprintln!("gorescue: warning: cannot open the journal: {e}"),
        }
        Ok(())
    }

    fn after_capture(&mut self, raw: &Path, plan: &Plan) -> AfterCapture {
        let mut after = AfterCapture::default();
        // With the journal method the journal's copy is the capture itself.
        // Only the ptrace capture forwards a copy to the journal.
        if !matches!(plan.stderr, Stderr::JournalStream { .. }) || plan.method != Method::Ptrace {
            return after;
        }
        let Some((j, cursor)) = self.journal.as_mut() else {
            return after;
        };
        let captured = std::fs::read(raw).unwrap_or_default();
        // The journal has no blank lines: count the capture's non-empty lines.
        let want = captured
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        // Not by _PID: journald attributes stream lines to the process that wrote them
        // (SCM_CREDENTIALS), and the dump's lines reach it from gorescue's copy.
        let filter = Filter::unit(&self.unit.id, self.user);
        // journald may still be reading the stream: read until nothing new comes for a second.
        let mut got = 0u64;
        let mut first: Option<DateTime<FixedOffset>> = None;
        let mut in_dump = false;
        if j.follow_from(cursor.as_deref(), &filter).is_err() {
            return after;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet_since = Instant::now();
        loop {
            match j.next_entry() {
                Ok(Some(e)) => {
                    quiet_since = Instant::now();
                    if !in_dump && memchr::memmem::find(&e.message, b"SIGQUIT: quit").is_some() {
                        in_dump = true;
                        first = Some(e.realtime);
                    }
                    if in_dump && !e.message.is_empty() {
                        got += 1;
                        // The register block's last line ends the dump (amd64, arm64).
                        if e.message.starts_with(b"gs ") || e.message.starts_with(b"fault ") {
                            break;
                        }
                    }
                }
                Ok(None) => {
                    if got >= want
                        || quiet_since.elapsed() > Duration::from_secs(1)
                        || Instant::now() > deadline
                    {
                        break;
                    }
                    let _ = j.wait(Duration::from_millis(200));
                }
                Err(_) => break,
            }
        }
        let lost = want.saturating_sub(got);
        let pct = if want == 0 {
            0.0
        } else {
            lost as f64 * 100.0 / want as f64
        };
        if let Some(t) = first {
            after.time = Some(DumpTime {
                time: t,
                source: TimeSource::Journal,
            });
        }
        after.json.insert(
            "journal".into(),
            serde_json::json!({
                "unit": self.unit.id,
                "invocation_id": self.unit.invocation_id,
                "lines_captured": want,
                "lines_in_journal": got,
                "lines_lost": lost,
                "lost_percent": (pct * 10.0).round() / 10.0,
            }),
        );
        after.notes.push(if lost == 0 {
            format!("journal: its own copy of the dump is whole ({got} lines)")
        } else {
            format!(
                "journal: its own copy of the dump is INCOMPLETE: {got} of {want} lines, {lost} \
({pct:.1} %) lost, most likely to journald's rate limit (LogRateLimitBurst=); gorescue's \
capture has every line"
            )
        });
        after
    }

    fn context(&self) -> Option<ContextFn> {
        if self.context.is_zero() {
            return None;
        }
        let (unit, user, span) = (self.unit.id.clone(), self.user, self.context);
        Some(Box::new(move |at| {
            crate::journal_cmd::lines_around(&unit, user, at, span).unwrap_or_default()
        }))
    }
}

/// What systemd did after the capture: restarted the service, or left it failed or inactive.
fn follow_up(sd: &Systemd, before: &UnitInfo) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sd.unit(&before.id) {
            Ok(u) => {
                let restarted = u.main_pid != 0 && u.main_pid != before.main_pid;
                if restarted {
                    return format!(
                        "systemd restarted {}: new MainPID {}{}",
                        u.id,
                        u.main_pid,
                        u.invocation_id
                            .as_deref()
                            .map(|i| format!(", invocation {i}"))
                            .unwrap_or_default()
                    );
                }
                let settled = matches!(u.active_state.as_str(), "failed" | "inactive");
                if settled && (before.restart == "no" || Instant::now() > deadline) {
                    return format!(
                        "systemd left {} {} (Result={}, main process exit status {})",
                        u.id, u.active_state, u.result, u.exec_main_status
                    );
                }
                if Instant::now() > deadline {
                    return format!(
                        "{} is {}/{} (MainPID {})",
                        u.id, u.active_state, u.sub_state, u.main_pid
                    );
                }
            }
            Err(UnitError::NoSuchUnit { .. }) => {
                return format!(
                    "{} is gone (a transient unit is removed once it stops)",
                    before.id
                );
            }
            Err(e) => return format!("cannot ask systemd about {} any more: {e}", before.id),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `gorescue unit`.
pub fn unit(args: &UnitArgs, out: Box<dyn Write>) -> Result<Tally, Error> {
    let bus = if args.user { Bus::User } else { Bus::System };
    let sd = Systemd::connect(bus).map_err(unit_error)?;
    let info = sd.unit(&args.name).map_err(unit_error)?;
    let pid = info.running_main_pid().map_err(unit_error)?;
    let mut hooks = UnitHooks {
        unit: info,
        user: args.user,
        context: args.context,
        keep_running: args.capture.keeps_running(),
        journal: None,
    };
    let result = live::capture(pid as i32, &args.capture, &mut hooks, out);
    let sent = !args.capture.dry_run
        && !args.capture.keeps_running()
        && !matches!(
            result,
            Err(Error::Refused(_) | Error::NotPermitted(_) | Error::NoSuchProcess(_))
        );
    if sent {
        eprintln!("{}", follow_up(&sd, &hooks.unit));
    }
    result
}
