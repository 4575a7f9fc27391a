//! The man page and shell completions, generated from the clap definitions.
//!
//! `man/gorescue.1` is the output of [`man_page`], committed; `tests/docs.rs` fails when the
//! two differ (`GORESCUE_BLESS=1 cargo test --test docs` rewrites the file). The parts that
//! describe the command line come from clap, so they cannot drift from the CLI: the title,
//! NAME, DESCRIPTION, OPTIONS and each command's description and options are rendered by
//! clap_mangen; the synopses are built here from clap's view of the arguments (clap_mangen's
//! leave out the option values). The sections about times, JSON, examples, exit status (from
//! [`crate::error::exit`]), files, security and so on are written here.
//!
//! The page is plain ASCII, has no line longer than 80 bytes, and uses only what both groff
//! and mandoc know (`.TH .SH .SS .PP .TP .IP .RS .RE .EX .EE .br .sp .nh .ad .nr`);
//! `groff -man -ww -z` and `mandoc -T lint -W all` are silent on it.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::cli::Cli;
use crate::error::exit;

/// The date in the page's `.TH` line: the last change to the page's hand-written text.
/// (A fixed date keeps the output reproducible; bump it when the text changes.)
pub const MAN_DATE: &str = "2026-11-28";

/// The man page `gorescue(1)`, as roff source.
pub fn man_page() -> Vec<u8> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();

    let mut page = String::new();
    // The title, with the quote-string preamble that every later part relies on.
    let title = Man::new(cmd.clone())
        .title("GORESCUE")
        .section("1")
        .date(MAN_DATE)
        .source(format!("gorescue {version}"))
        .manual("User Commands");
    page.push_str(&render_man(|w| title.render_title(w)));
    // No hyphenation (it breaks paths and option names; HY=0 because groff's .EE restores
    // the hyphenation mode from HY) and no justification (it spreads synopses apart).
    page.push_str(".nr HY 0\n.nh\n.ad l\n");

    let man = Man::new(cmd.clone());
    page.push_str(&render_man(|w| man.render_name_section(w)));

    // Every subcommand, without its -h and -V: those are the same everywhere and are
    // described once, under OPTIONS.
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .map(hide_common_flags)
        .collect();

    // SYNOPSIS: one line per subcommand.
    let mut synopsis = Page::new();
    synopsis.sh("SYNOPSIS");
    for (i, sub) in subcommands.iter().enumerate() {
        if i > 0 {
            synopsis.br();
        }
        synopsis.t(synopsis_line(sub));
    }
    synopsis.br().t([
        bold("gorescue"),
        roman(" "),
        bold("--help"),
        roman(" | "),
        bold("--version"),
    ]);
    page.push_str(&render_roff(&synopsis.done()));

    let man = Man::new(cmd.clone());
    page.push_str(&render_man(|w| man.render_description_section(w)));
    page.push_str(&render_roff(&description_extra()));

    let man = Man::new(cmd.clone());
    page.push_str(&render_man(|w| man.render_options_section(w)));

    // COMMANDS: every subcommand's synopsis, description and options, from clap.
    page.push_str(&render_roff(
        &Page::new()
            .sh("COMMANDS")
            .p([roman(
                "Every command also takes the options -h, --help and -V, --version \
                 described above.",
            )])
            .done(),
    ));
    for sub in &subcommands {
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        page.push_str(&render_roff(
            &Page::new().ss(name).t(synopsis_line(sub)).pp().done(),
        ));
        let man = Man::new(sub.clone());
        page.push_str(&strip_heading(&render_man(|w| {
            man.render_description_section(w)
        })));
        page.push_str(&strip_heading(&render_man(|w| {
            man.render_options_section(w)
        })));
    }

    for section in [
        times(),
        output(),
        template_unit(),
        examples(),
        exit_status(),
        environment(),
        files(),
        security(),
        see_also(),
    ] {
        page.push_str(&render_roff(&section));
    }
    tidy(&page).into_bytes()
}

/// Hide `-h, --help` and `-V, --version` (in the copy used for the page only).
fn hide_common_flags(mut cmd: clap::Command) -> clap::Command {
    for id in ["help", "version"] {
        if cmd.get_arguments().any(|a| a.get_id() == id) {
            cmd = cmd.mut_arg(id, |a| a.hide(true));
        }
    }
    cmd
}

/// `gorescue annotate [--at TIME] [--format text|json|raw] ... [FILE|-]`, from clap.
fn synopsis_line(cmd: &clap::Command) -> Vec<Inline> {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut line = vec![bold(name)];
    let args = cmd.get_arguments().filter(|a| !a.is_hide_set());
    let (positionals, options): (Vec<&clap::Arg>, Vec<&clap::Arg>) =
        args.partition(|a| a.is_positional());
    for arg in options.into_iter().chain(positionals) {
        let optional = !arg.is_required_set();
        line.push(roman(if optional { " [" } else { " " }));
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        if let Some(long) = arg.get_long() {
            line.push(bold(format!("--{long}")));
        } else if let Some(short) = arg.get_short() {
            line.push(bold(format!("-{short}")));
        }
        if takes_value {
            if !arg.is_positional() {
                line.push(roman(" "));
            }
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if !arg.is_positional() && !values.is_empty() && values.len() <= 3 {
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        line.push(roman("|"));
                    }
                    line.push(bold(v.clone()));
                }
            } else {
                let value = arg
                    .get_value_names()
                    .map(|v| v.join(" "))
                    .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
                line.push(italic(value));
            }
        }
        if optional {
            line.push(roman("]"));
        }
    }
    line
}

/// Final touches on the whole page: no blank lines (clap_mangen puts one between an option's
/// help and its possible values), no trailing blanks, and filled text broken into lines of
/// at most 80 bytes (text in .EX/.EE is left as it is).
fn tidy(page: &str) -> String {
    let page = page.replace(".br\n\n.br\n", ".sp\n");
    let mut out = String::with_capacity(page.len() + page.len() / 16);
    let mut no_fill = false;
    for line in page.lines() {
        if line.starts_with(".EX") || line.starts_with(".nf") {
            no_fill = true;
        } else if line.starts_with(".EE") || line.starts_with(".fi") {
            no_fill = false;
        }
        let is_text = !(line.starts_with('.') || line.starts_with('\''));
        if no_fill || !is_text {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let line = line.trim_end_matches(' ');
        if line.is_empty() {
            continue;
        }
        let mut current = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if !current.is_empty() && current.len() + 1 + word.len() > 80 {
                out.push_str(&current);
                out.push('\n');
                current.clear();
            }
            if current.is_empty() {
                if word.starts_with('.') || word.starts_with('\'') {
                    current.push_str("\\&");
                }
            } else {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// A shell completion script for `gorescue`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gorescue", &mut out);
    out
}

/// Every part after the first starts with this preamble (defining `\*(Aq`); it is kept once.
fn strip_preamble(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Drop the `.SH` line that clap_mangen puts before each section it renders.
fn strip_heading(s: &str) -> String {
    match s.split_once('\n') {
        Some((first, rest)) if first.starts_with(".SH") => rest.to_string(),
        _ => s.to_string(),
    }
}

fn render_man(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    f(&mut buf).expect("rendering into a Vec cannot fail");
    let s = String::from_utf8(buf).expect("clap_mangen writes UTF-8");
    // The title is rendered first and keeps the preamble; every other part loses it.
    if s.contains("\n.TH ") {
        s
    } else {
        strip_preamble(&s)
    }
}

fn render_roff(r: &Roff) -> String {
    let mut buf = Vec::new();
    r.to_writer(&mut buf)
        .expect("rendering into a Vec cannot fail");
    strip_preamble(&String::from_utf8(buf).expect("roff writes UTF-8"))
}

// ---------------------------------------------------------------------------------------------
// The hand-written sections. Text goes through the roff crate, which escapes `-`, `\` and
// leading control characters; keep it ASCII (groff warns about other input characters).

/// A small builder over [`Roff`] for the hand-written sections.
struct Page {
    roff: Roff,
    /// Just after .SH/.SS, where a .PP would be redundant.
    after_heading: bool,
}

impl Page {
    fn new() -> Page {
        Page {
            roff: Roff::new(),
            after_heading: false,
        }
    }
    fn control(&mut self, name: &str, args: &[&str]) -> &mut Self {
        self.roff.control(name, args.iter().copied());
        self.after_heading = name == "SH" || name == "SS";
        self
    }
    fn sh(&mut self, title: &str) -> &mut Self {
        self.control("SH", &[title])
    }
    fn ss(&mut self, title: &str) -> &mut Self {
        self.control("SS", &[title])
    }
    fn br(&mut self) -> &mut Self {
        self.control("br", &[])
    }
    /// Start a new paragraph.
    fn pp(&mut self) -> &mut Self {
        if !self.after_heading {
            self.control("PP", &[]);
        }
        self
    }
    /// Filled text in the current paragraph.
    fn t(&mut self, text: impl Into<Vec<Inline>>) -> &mut Self {
        self.roff.text(text);
        self.after_heading = false;
        self
    }
    /// A new paragraph of filled text.
    fn p(&mut self, text: impl Into<Vec<Inline>>) -> &mut Self {
        self.pp().t(text)
    }
    /// A tagged paragraph: `tag`, then `text` indented below it.
    fn tp(&mut self, tag: impl Into<Vec<Inline>>, text: impl Into<Vec<Inline>>) -> &mut Self {
        self.control("TP", &[]).t(tag).t(text)
    }
    /// An indented example: lines kept as they are, in a fixed-width font.
    fn ex(&mut self, lines: &[&str]) -> &mut Self {
        self.control("RS", &["4"]).control("EX", &[]);
        for line in lines {
            self.t([roman(*line)]);
        }
        self.control("EE", &[]).control("RE", &[])
    }
    /// A described example: a paragraph, then the commands.
    fn example(&mut self, text: impl Into<Vec<Inline>>, lines: &[&str]) -> &mut Self {
        self.p(text).pp().ex(lines)
    }
    fn done(&mut self) -> Roff {
        self.after_heading = false;
        std::mem::take(&mut self.roff)
    }
}

fn description_extra() -> Roff {
    Page::new()
        .p([
            bold("annotate"),
            roman(" and "),
            bold("strace"),
            roman(
                " read what a Go program already printed: a saved dump, a log that holds one, \
             or the log of strace(1) attached to the program while it was sent SIGQUIT. They \
             do not signal or trace anything themselves.",
            ),
        ])
        .p([
            bold("pid"),
            roman(
                " captures the dump of a running process: it inspects the process, says what \
             it will do and asks, sends SIGQUIT (which ends the process), and collects what \
             the Go runtime prints, either from the file that the process's stderr goes to, \
             or, by ptrace, from a memory file of gorescue's that the process's fd 2 is \
             pointed at while it dumps (see SECURITY). The raw capture is saved before \
             anything parses it, then annotated as by ",
            ),
            bold("annotate"),
            roman("."),
        ])
        .p([
            bold("unit"),
            roman(
                " does the same for a systemd service, found by its name over D-Bus: it shows \
             the unit's state, MainPID, InvocationID, Restart= and logging settings next to \
             the inspection of its main process, and captures as ",
            ),
            bold("pid"),
            roman(
                " does. When the service's stderr is the journal, it also reads the journal's \
             own copy of the dump back and says how much of it journald dropped (its rate \
             limit often cuts a big dump), prints what the service logged around the time \
             the trouble began (--context), and says what systemd did next: restarted the \
             service or left it failed or inactive.",
            ),
        ])
        .p([
            bold("journal"),
            roman(
                " finds the goroutine dumps, panics and fatal errors that a service has \
             already left in the journal, across restarts, and prints the newest, dated by \
             the journal's timestamps, or lists them all. It sends nothing to any process.",
            ),
        ])
        .p([roman(
            "The text output keeps every line of the dump exactly as it was, adds to each \
             goroutine header that has a wait the approximate time the goroutine has been \
             blocked since, and ends each dump with a summary: the dump time and where it came \
             from, the goroutines by state, the longest waits, and the onset clusters, the \
             groups of goroutines that got stuck at about the same time. The oldest cluster \
             usually dates from the program's start; of the others, the largest is marked as \
             where the trouble likely began.",
        )])
        .done()
}

fn times() -> Roff {
    Page::new()
        .sh("HOW TIMES ARE COMPUTED")
        .p([roman("A goroutine header such as")])
        .ex(&["goroutine 34 [chan send, 1390 minutes]:"])
        .p([roman(
            "says how long the goroutine has waited, as the Go runtime measures it: it prints \
             (nanotime() - waitsince) / 60e9, divided as integers (floored), and only when the \
             result is at least 1. The runtime does not stamp waitsince when the goroutine \
             blocks: the garbage collector's stack scan stamps it the first time it finds the \
             goroutine blocked, and it stamps it with the start of the previous collection. \
             The real moment the goroutine blocked therefore lies between about one minute \
             earlier (the floor) and one interval between collections later than the time \
             shown. An idle program is collected at least every 2 minutes (the forced \
             collection), so blocked-since times are good to about -1 to +2 minutes; a busy \
             program collects more often.",
        )])
        .p([roman(
            "Exceptions: a goroutine that blocked before the program's first collection is \
             stamped with that collection's time, so its wait is understated; no minutes at all \
             (or fewer than expected) can mean that no collection has run since the goroutine \
             blocked, for example with GOGC=off, not that it blocked recently.",
        )])
        .p([roman(
            "gorescue adds blocked since = dump time - N minutes to each such header, prints \
             it to the minute and marks it approximate (~), and never claims more precision \
             than that. The dump time is taken from, in this order:",
        )])
        .tp(
            [bold("--at"), roman(" "), italic("TIME")],
            [roman(
                "given on the command line; it wins over anything in the input.",
            )],
        )
        .tp(
            [roman("the capture clock")],
            [
                roman("with "),
                bold("pid"),
                roman(
                    ": the moment the dump's first bytes reached gorescue, a fraction of a \
                 second after the signal (labelled capture).",
                ),
            ],
        )
        .tp(
            [roman("journal timestamps")],
            [roman(
                "the timestamp of the dump's first line in journalctl(1) output (the short, \
             short-iso, short-iso-precise and short-precise modes; the short modes carry no \
             year, which is then inferred).",
            )],
        )
        .tp(
            [roman("strace timestamps")],
            [roman(
                "the time of the write that carried the dump's first line, in a log made with \
             strace -t, -tt or -ttt (-r timestamps are relative and give none).",
            )],
        )
        .tp(
            [roman("the file's modification time")],
            [roman(
                "when nothing else is known; it is labelled as such and is an upper bound, since \
             the file may have been written or copied after the dump.",
            )],
        )
        .p([roman(
            "Otherwise no dump time is known: the waits are still shown, and the summary says \
             how to give the time with --at. Times are shown in the local time zone with \
             their offset, or in UTC with --utc; JSON output uses RFC 3339.",
        )])
        .done()
}

fn output() -> Roff {
    Page::new()
        .sh("JSON OUTPUT")
        .p([
            roman("With "),
            bold("--format json"),
            roman(", the output is one JSON document of this shape (field names are stable):"),
        ])
        .ex(&[
            "{ \"dumps\": [ {",
            "    \"kind\": \"sigquit\" | \"panic\" | \"fatal\" | \"goroutine-listing\",",
            "    \"reason\": \"SIGQUIT: quit\" | \"panic: ...\" | \"fatal error: ...\" | null,",
            "    \"dump_time\": RFC 3339 | null,",
            "    \"dump_time_source\": \"argument\" | \"journal\" | \"strace\" | \"capture\"",
            "                        | \"file-mtime\" | null,",
            "    \"complete\": bool,",
            "    \"goroutines\": [ {",
            "        \"id\": int, \"state\": str, \"wait_minutes\": int | null,",
            "        \"blocked_since\": RFC 3339 | null,",
            "        \"locked_to_thread\": bool, \"labels\": {str: str},",
            "        \"frames\": [ {\"function\": str, \"args\": str, \"file\": str,",
            "                     \"line\": int, \"offset\": str | null} ],",
            "        \"elided_frames\": bool,",
            "        \"created_by\": {\"function\": str, \"file\": str, \"line\": int,",
            "                       \"goroutine\": int | null} | null",
            "    } ]",
            "} ] }",
        ])
        .p([roman(
            "state is the status exactly as printed before the first comma (chan receive \
             (durable), semacquire, running). blocked_since is dump_time minus wait_minutes \
             minutes, null when either is unknown. A dump is complete when its end was seen. \
             Goroutines appear in the order of the input.",
        )])
        .p([
            roman("The dumps that "),
            bold("pid"),
            roman(
                " captured also carry, after dump_time_source, an object that says how and \
             from where:",
            ),
        ])
        .ex(&[
            "\"capture\": {\"method\": \"file\" | \"ptrace\" | \"journal\" | \"snapshot\" | \"pprof\",",
            "            \"pid\": int,",
            "            \"exe\": str | null, \"go_version\": str | null,",
            "            \"stderr\": {\"kind\": str, \"path\": str | null},",
            "            \"raw_file\": str}",
        ])
        .p([roman(
            "stderr.kind is file, pipe, tty, null, journal, socket, other or closed: where \
             fd 2 went before the capture. raw_file is the saved raw capture (see FILES). \
             With --keep-running, capture also has pause_ms (see SECURITY); the pprof route \
             adds pprof_url, pause_is_upper_bound (true) and listing_cut_at_64mib.",
        )])
        .p([
            roman("When "),
            bold("unit"),
            roman(
                " captured a service whose stderr is the journal, capture also holds what it \
             found of the journal's own copy of the dump:",
            ),
        ])
        .ex(&[
            "\"journal\": {\"unit\": str, \"invocation_id\": str | null,",
            "            \"lines_captured\": int, \"lines_in_journal\": int,",
            "            \"lines_lost\": int, \"lost_percent\": number}",
        ])
        .p([roman(
            "lines_captured counts the non-blank lines of gorescue's capture (journald stores \
             no blank lines), lines_in_journal those of the journal's copy; lost_percent is \
             rounded to a tenth.",
        )])
        .p([
            roman("The dump that "),
            bold("journal"),
            roman(" prints carries, after dump_time_source (then journal):"),
        ])
        .ex(&["\"journal\": {\"unit\": str, \"invocation_id\": str | null, \"pid\": int | null}"])
        .p([
            roman("and "),
            bold("journal --list --format json"),
            roman(" prints an array, one object per dump found, oldest first:"),
        ])
        .ex(&[
            "[ {\"time\": RFC 3339 | null, \"time_source\": \"journal\", \"unit\": str,",
            "   \"invocation_id\": str | null, \"pid\": int | null, \"kind\": str,",
            "   \"reason\": str | null, \"goroutines\": int, \"complete\": bool} ]",
        ])
        .done()
}

fn template_unit() -> Roff {
    Page::new()
        .sh("THE TEMPLATE UNIT")
        .p([roman(
            "units/gorescue@.service, in gorescue's source tree, is a systemd template unit \
             that captures the dump of a service without asking: the instance name is the \
             unit to rescue, with its suffix, so gorescue@myservice.service.service rescues \
             myservice.service. With gorescue installed as /usr/local/bin/gorescue, install \
             the unit as root:",
        )])
        .ex(&[
            "install -m0644 units/gorescue@.service /etc/systemd/system/",
            "systemctl daemon-reload",
        ])
        .p([roman("It is a Type=oneshot service that runs")])
        .ex(&["/usr/local/bin/gorescue unit %i --yes --save-dir %S/gorescue --utc"])
        .p([roman(
            "--yes since there is no terminal to ask on. %S is /var/lib for the system \
             manager, and StateDirectory=gorescue makes systemd create /var/lib/gorescue \
             (StateDirectoryMode=0700, UMask=0077), where the raw capture is saved, mode \
             0600 (see FILES): ProtectSystem=strict leaves every other directory read-only. \
             The annotated dump, in UTC, goes to standard output, that is to the unit's own \
             journal. systemctl start returns once the capture is over, and fails when \
             gorescue fails; its exit status (see EXIT STATUS) is the unit's ExecMainStatus. \
             Since journald's rate limit applies to this unit's output too, read a big dump \
             from the raw capture with gorescue annotate.",
        )])
        .p([roman(
            "The unit is hardened as far as the job allows: NoNewPrivileges=yes, \
             ProtectSystem=strict, ProtectHome=read-only, PrivateTmp=yes, \
             PrivateDevices=yes, ProtectKernelTunables=yes, ProtectKernelModules=yes, \
             ProtectKernelLogs=yes, ProtectControlGroups=yes, ProtectClock=yes, \
             ProtectHostname=yes, LockPersonality=yes, MemoryDenyWriteExecute=yes, \
             RestrictRealtime=yes, RestrictSUIDSGID=yes, SystemCallArchitectures=native, and \
             RestrictAddressFamilies=AF_UNIX AF_NETLINK: unix sockets for D-Bus and the \
             journal, netlink for the kernel's socket table (sock_diag), which tells whether \
             fd 2 is a journal stream. It runs as root, but CapabilityBoundingSet= keeps only \
             three capabilities:",
        )])
        .tp(
            [bold("CAP_SYS_PTRACE")],
            [roman(
                "to read /proc/PID of a process of another user (its environment, auxiliary \
             vector, executable and file descriptors), to take a copy of its fd 2 \
             (pidfd_getfd), and for the ptrace method.",
            )],
        )
        .tp(
            [bold("CAP_KILL")],
            [roman("to send SIGQUIT to a process of another user.")],
        )
        .tp(
            [bold("CAP_DAC_READ_SEARCH")],
            [roman(
                "to read files whose modes would otherwise keep root out, since root without \
             CAP_DAC_OVERRIDE is bound by file modes: the target's executable (its Go build \
             info), its stderr file for the file method, and the journal's files.",
            )],
        )
        .p([roman(
            "Anything else (mounting, changing files outside /var/lib/gorescue, loading \
             modules, raw sockets) is out of its reach. The unit passes systemd-analyze \
             verify. The target's own confinement still applies to the injected system \
             calls of the ptrace method; see seccomp under SECURITY.",
        )])
        .done()
}

fn examples() -> Roff {
    Page::new()
        .sh("EXAMPLES")
        .ss("A wedged service that logs to the journal")
        .example(
            [roman(
                "myservice, a Go service under systemd, has stopped answering. Its stderr \
                 goes to the journal (StandardError=journal, or inherit, the default). As \
                 root, and without restarting it:",
            )],
            &["sudo gorescue unit myservice"],
        )
        .p([roman(
            "gorescue asks systemd over D-Bus (myservice means myservice.service) and shows \
             the unit's state (ActiveState/SubState), its MainPID and InvocationID, Restart=, \
             and the settings that decide what the journal keeps of a dump: StandardError=, \
             LogRateLimitIntervalSec=, LogRateLimitBurst=, LogLevelMax= (below info, the \
             journal keeps none of it) and LogFilterPatterns=; then the inspection of the \
             main process, as with pid, and it asks.",
        )])
        .p([roman(
            "It captures by ptrace and forwards a copy of what it drains to the service's \
             original fd 2, so the journal still gets its own copy. That copy is rate \
             limited: journald keeps 10000 messages per 30 s per service by default \
             (RateLimitBurst=, scaled up with the free disk space; the unit's \
             LogRateLimitBurst=), a dump has about 34 lines per goroutine, and journald \
             drops the rest, mostly silently. With the default limit, 88.6 % of the lines of \
             a 10,000-goroutine dump are typically lost. gorescue's own capture has every \
             line; it reads the journal's copy back and says how many of its lines journald \
             dropped. The dump time is the journal timestamp of the dump's first line. \
             The journal's copy of the dump's lines carries gorescue's PID (_PID=), since \
             gorescue wrote it.",
        )])
        .p([roman(
            "Where ptrace is not permitted, or with --via journal, gorescue reads the dump \
             back from the journal itself (the entries of the main process after the \
             journal's position at the signal, lines journald split at LineMax= rejoined). \
             What journald's rate limit dropped is then missing, and the dump is reported \
             incomplete (exit status 8).",
        )])
        .p([roman(
            "To look without ending the service, for example twice a minute apart to see \
             which goroutines move, add --keep-running. The service runs on: gorescue fetches \
             the goroutine listing from the service's own net/http/pprof listener, or makes a \
             forked copy of it print the dump, whichever it estimates holds the service up \
             less; the plan says which and why, and --via pprof or --via snapshot chooses \
             (see SECURITY for the pause and the risks):",
        )])
        .pp()
        .ex(&["sudo gorescue unit myservice --keep-running --yes"])
        .p([roman(
            "After the summary's likely onset, gorescue prints what the service itself \
             logged within --context (default 2 minutes) of that time: what it said when it \
             got stuck. A wider window:",
        )])
        .pp()
        .ex(&["sudo gorescue unit myservice --context 5m"])
        .p([roman(
            "SIGQUIT ends the service (exit status 2). Afterwards gorescue says what systemd \
             did: restarted it (Restart=on-failure or always), with the new MainPID and \
             invocation, or left it failed or inactive. To see all of the above and send \
             nothing:",
        )])
        .pp()
        .ex(&["sudo gorescue unit myservice --dry-run"])
        .ss("A desktop program that writes to ~/.xsession-errors")
        .example(
            [roman(
                "A desktop program started by the X session has been stuck for hours. Its \
                 stderr goes to ~/.xsession-errors (ls -l /proc/PID/fd/2 tells where a \
                 process's stderr goes). gorescue sees that fd 2 is a regular file, shows \
                 what it found and asks; once confirmed it sends SIGQUIT, reads what the \
                 program appends to the file until it has exited, and annotates that, dated \
                 by the capture clock. The file keeps its own copy of the dump:",
            )],
            &["ls -l /proc/PID/fd/2", "sudo gorescue pid PID"],
        )
        .example(
            [roman(
                "If the program was already sent SIGQUIT by hand, its dump is in \
                 ~/.xsession-errors, which may hold other output and the dumps of earlier \
                 runs too; pass the time of the kill, since the file's modification time is \
                 only an upper bound:",
            )],
            &[
                "t=$(date -Iseconds); kill -QUIT PID; sleep 1",
                "gorescue annotate ~/.xsession-errors --at \"$t\"",
            ],
        )
        .ss("A service whose stderr is /dev/null")
        .example(
            [roman(
                "With StandardError=null (or a program started with 2>/dev/null) the \
                 runtime's dump goes nowhere. gorescue unit finds the main process by the \
                 unit's name, gorescue pid takes its PID; from a script, without a prompt \
                 (--yes):",
            )],
            &[
                "sudo gorescue unit myservice --yes",
                "sudo gorescue pid $(systemctl show -P MainPID myservice) --yes",
            ],
        )
        .p([roman(
            "fd 2 is /dev/null, so gorescue uses ptrace: it freezes the process, points its \
             fd 2 at a memory file (memfd) of gorescue's, sends SIGQUIT through a pidfd while \
             the process is still frozen, and lets it go; the runtime then writes the dump at \
             full speed, and gorescue drains it into the raw capture file. When fd 2 is a \
             pipe, a tty or a socket (the journal) instead, its reader still gets a copy of \
             the dump. See what gorescue finds and what it would do (the Go version, where \
             fd 2 goes, the capture method, GOTRACEBACK, anything that would prevent the \
             dump), without sending anything:",
        )])
        .pp()
        .ex(&["sudo gorescue pid PID --dry-run"])
        .example(
            [roman(
                "Every capture is first saved unchanged, as \
                 /var/lib/gorescue/COMM-PID-TIME.dump when gorescue runs as root, mode 0600 \
                 (see FILES), and gorescue prints where; --save-dir DIR keeps it in DIR \
                 instead. gorescue annotate reads the file again later, for example grouped; \
                 TIME in its name is the capture time in UTC, which --at takes:",
            )],
            &[
                "sudo ls -l /var/lib/gorescue",
                "sudo gorescue annotate --group --at 2026-11-28T09:35:00Z \\",
                "    /var/lib/gorescue/myservice-1234-20261128T093500Z.dump",
            ],
        )
        .ss("A crash that is already in the journal")
        .example(
            [roman(
                "The service panicked last night, or someone ran systemctl kill -s QUIT \
                 myservice, and systemd has restarted it since. gorescue journal searches \
                 the unit's journal across restarts and lists every SIGQUIT dump, panic and \
                 fatal error in it: its time, invocation ID, PID, kind, number of goroutines, \
                 and whether it is complete:",
            )],
            &["sudo gorescue journal myservice --list"],
        )
        .example(
            [roman(
                "Then print the newest, annotated, with the journal timestamp of its first \
                 line as the dump time (--since narrows the search). gorescue journal sends \
                 nothing to any process. A dump that journald cut short is marked \
                 incomplete, and since journald stores no blank lines, there are none \
                 between its goroutines:",
            )],
            &[
                "sudo gorescue journal myservice",
                "sudo gorescue journal myservice --since yesterday --group",
            ],
        )
        .example(
            [roman(
                "An older dump, by its invocation ID from --list, through journalctl (the \
                 short-iso timestamps date it):",
            )],
            &["journalctl _SYSTEMD_INVOCATION_ID=ID -o short-iso | gorescue annotate"],
        )
        .ss("A saved strace log")
        .example(
            [roman(
                "Without gorescue, the dump of a process whose stderr goes nowhere useful \
                 can be had with strace: as root, attach strace to the process to log its \
                 write(2) calls while it dumps (strace exits with the process), then \
                 reassemble the dump from the log. -s 65536 keeps strace from cutting the \
                 strings, -tt puts the dump time in the log, and -f follows every thread \
                 (this stops the process at every write: a big dump takes minutes):",
            )],
            &[
                "strace -f -tt -s 65536 -e trace=write -p PID -o /tmp/strace.log &",
                "sleep 1; kill -QUIT PID; wait",
                "gorescue strace /tmp/strace.log",
            ],
        )
        .example(
            [roman(
                "Write the reassembled dump out unchanged, to keep it or to feed it to other \
                 tools:",
            )],
            &["gorescue strace /tmp/strace.log --format raw > dump.txt"],
        )
        .ss("Capturing through the template unit")
        .example(
            [roman(
                "With units/gorescue@.service installed (see THE TEMPLATE UNIT), systemd \
                 runs the capture: from a monitoring script, over ssh, without a terminal. \
                 The instance name is the unit to rescue; systemctl start returns when the \
                 capture is over. The annotated dump is in the template unit's journal, the \
                 raw capture in /var/lib/gorescue:",
            )],
            &[
                "sudo systemctl start gorescue@myservice.service.service",
                "journalctl -u gorescue@myservice.service.service",
                "sudo ls -l /var/lib/gorescue",
            ],
        )
        .ss("Reading the JSON with jq")
        .example(
            [roman(
                "With jq(1), list the goroutines that have waited more than an hour, with \
                 the time they have been blocked since:",
            )],
            &[
                "gorescue annotate dump.txt --format json |",
                "    jq '.dumps[0].goroutines[] | select(.wait_minutes > 60)",
                "        | {id, state, blocked_since}'",
            ],
        )
        .example(
            [roman(
                "Capture a service to a JSON file, then see how much of the dump the journal \
                 lost and count the goroutines by state:",
            )],
            &[
                "sudo gorescue unit myservice --yes --format json -o dump.json",
                "jq '.dumps[0].capture.journal.lost_percent' dump.json",
                "jq -r '.dumps[0].goroutines[].state' dump.json | sort | uniq -c",
            ],
        )
        .example(
            [roman(
                "The crashes in a service's journal, newest last, one per line:",
            )],
            &[
                "sudo gorescue journal myservice --list --format json |",
                "    jq -r '.[] | [.time, .invocation_id, .kind, .goroutines] | @tsv'",
            ],
        )
        .ss("Other dumps")
        .example(
            [roman(
                "Annotate a dump someone saved (the times are computed from the file's \
                 modification time unless --at is given); the dump was taken at a known time \
                 (here in UTC, shown in UTC) and the file has been copied since:",
            )],
            &[
                "gorescue annotate dump.txt",
                "gorescue annotate dump.txt --at 2022-02-26T09:45:00Z --utc",
            ],
        )
        .example(
            [roman(
                "A big dump (thousands of goroutines, most of them alike): print each \
                 distinct stack once, with its count, its goroutine ids and the range of \
                 their waits:",
            )],
            &["gorescue annotate dump.txt --group | less"],
        )
        .example(
            [roman("Install the completions for bash:")],
            &["gorescue completions bash > /etc/bash_completion.d/gorescue"],
        )
        .done()
}

fn exit_status() -> Roff {
    let code = |c: u8| bold(c.to_string());
    Page::new()
        .sh("EXIT STATUS")
        .p([roman(
            "unit exits as pid does, and with the codes below for what can go wrong with the \
             unit itself; each such error is one line that names the unit.",
        )])
        .tp(
            [code(exit::OK)],
            [roman(
                "Success: at least one dump was found and printed (a dump cut off before its end \
             is printed too, with a warning on standard error). With pid and unit: the whole \
             dump was captured, saved and printed; a journal's incomplete copy of it is \
             reported, not an error. With journal --list: the dumps were listed.",
            )],
        )
        .tp(
            [code(exit::FAILURE)],
            [roman(
                "Failure, such as an error writing the output. With pid and unit also: the raw \
             capture cannot be saved, a system call failed unexpectedly, or the dump stopped \
             coming for --timeout after part of it had arrived (that part is saved and \
             printed). unit: the bus cannot be reached (no D-Bus socket, or with --user no \
             session bus), or systemd answered with another error. journal: the journal \
             cannot be read.",
            )],
        )
        .tp(
            [code(exit::USAGE)],
            [roman(
                "Usage error: an unknown command or option, a bad value, a --at or --since time \
             that cannot be read, or (unit) an invalid unit name.",
            )],
        )
        .tp(
            [code(exit::INPUT)],
            [roman(
                "The input cannot be read: it does not exist, permission is denied, or it is a \
             directory.",
            )],
        )
        .tp(
            [code(exit::NO_DUMP)],
            [roman(
                "The input is empty, or holds no goroutine dump. With pid and unit: no dump \
             arrived within --timeout of SIGQUIT; the program may catch SIGQUIT itself \
             (signal.Notify), and the process's state now is reported. journal: the unit \
             has no journal entries (since --since), or none of them is a dump, panic or \
             fatal error.",
            )],
        )
        .tp(
            [code(exit::NO_PROCESS)],
            [roman(
                "pid: there is no process with that PID. unit: there is no such unit, or it is \
             not running (inactive, failed, or MainPID 0): there is no process to rescue, \
             but gorescue journal may find what it left in the journal.",
            )],
        )
        .tp(
            [code(exit::NOT_PERMITTED)],
            [roman(
                "pid and unit: not permitted to inspect, trace or signal the process. The \
             message says what is needed (root, or CAP_SYS_PTRACE and CAP_KILL) and the \
             value of kernel.yama.ptrace_scope; see SECURITY. unit also: the bus or systemd \
             denied access. journal: not permitted to read the journal (root, or the \
             systemd-journal or adm group).",
            )],
        )
        .tp(
            [code(exit::REFUSED)],
            [roman(
                "pid and unit: refused, and nothing was sent: the answer to the prompt was not \
             yes; standard input is not a terminal and --yes was not given; the process does \
             not look like a Go program (--force sends anyway); it runs in secure mode \
             (setuid, setgid or file capabilities: Go 1.21 and later print no dump then); it \
             ignores SIGQUIT, or blocks it in every thread (--force sends anyway); it is \
             stopped (--force sends anyway) or a zombie; or the capture method cannot be used \
             (it is already traced and ptrace is needed, --via file but fd 2 is not a regular \
             file, fd 2 is closed). unit also: the unit is not a service (a socket, timer, \
             mount or other unit has no main process).",
            )],
        )
        .tp(
            [code(exit::TARGET_EXITED)],
            [roman(
                "pid and unit: the process exited before it was signalled (or its PID was \
             reused), or during the capture before its dump was complete, or without \
             printing a dump. What arrived is saved and printed.",
            )],
        )
        .tp(
            [code(exit::INTERRUPTED)],
            [roman(
                "pid and unit: gorescue was interrupted by SIGINT, SIGTERM or SIGHUP. Before \
             the signal, nothing was sent and the process is released unchanged; after it, \
             what had arrived, if anything, is saved and printed. The process is never left \
             stopped or traced.",
            )],
        )
        .done()
}

fn environment() -> Roff {
    Page::new()
        .sh("ENVIRONMENT")
        .tp(
            [bold("TZ")],
            [roman(
                "The time zone in which times are shown, and in which a --at or --since time \
             without an offset is read. --utc shows UTC instead.",
            )],
        )
        .tp(
            [bold("XDG_STATE_HOME")],
            [roman(
                "When pid or unit does not run as root, it saves raw captures in \
             $XDG_STATE_HOME/gorescue if the variable is set and not empty.",
            )],
        )
        .tp(
            [bold("HOME")],
            [roman(
                "Otherwise (not root, no XDG_STATE_HOME), raw captures go to \
             $HOME/.local/state/gorescue.",
            )],
        )
        .tp(
            [bold("DBUS_SESSION_BUS_ADDRESS")],
            [roman(
                "With --user, unit talks to the user's service manager over the session bus at \
             this address.",
            )],
        )
        .tp(
            [bold("XDG_RUNTIME_DIR")],
            [roman(
                "With --user and no DBUS_SESSION_BUS_ADDRESS, the session bus is \
             $XDG_RUNTIME_DIR/bus. sudo usually clears both: run gorescue unit --user as \
             the user, in the user's own session, or give the address, such as \
             DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus.",
            )],
        )
        .tp(
            [bold("DBUS_SYSTEM_BUS_ADDRESS")],
            [roman(
                "The system bus, when not at its usual /run/dbus/system_bus_socket.",
            )],
        )
        .done()
}

fn files() -> Roff {
    Page::new()
        .sh("FILES")
        .tp(
            [italic("/var/lib/gorescue/")],
            [roman(
                "Where pid and unit save raw captures when they run as root; also the \
             template unit's StateDirectory=.",
            )],
        )
        .tp(
            [italic("$XDG_STATE_HOME/gorescue/")],
            [roman(
                "Where pid and unit save raw captures otherwise (~/.local/state/gorescue/ when \
             XDG_STATE_HOME is not set).",
            )],
        )
        .tp(
            [italic("/etc/systemd/system/gorescue@.service")],
            [roman(
                "The template unit, installed from units/gorescue@.service in the source tree \
             (see THE TEMPLATE UNIT).",
            )],
        )
        .tp(
            [
                italic("/var/log/journal/"),
                roman(", "),
                italic("/run/log/journal/"),
            ],
            [roman(
                "The journal, which unit reads when the service logs there and which journal \
             searches, through sd-journal(3).",
            )],
        )
        .p([roman(
            "--save-dir chooses another directory. A missing directory is created with mode \
             0700. A raw capture is named COMM-PID-TIME.dump (COMM the process's name, TIME \
             the capture time in UTC, such as 20261128T093500Z), holds the bytes exactly as \
             the process wrote them, and has mode 0600. It is written under a temporary name \
             and renamed once its bytes are on disk, so a file under its final name is never \
             half written; a capture that brought no bytes leaves no file. The file is saved \
             before anything parses it, and gorescue annotate reads it again. The output \
             file of -o is written the same way, mode 0600.",
        )])
        .p([roman(
            "Apart from these, gorescue reads no configuration or other file: annotate and \
             strace read only the file given on the command line, or standard input; pid \
             and unit read /proc (see SECURITY).",
        )])
        .p([roman(
            "Goroutine dumps can hold secrets: function arguments are printed as raw words \
             and pointers, and file paths, labels and the program's other output are kept. \
             Treat dumps, raw captures, strace logs and gorescue's output like the process's \
             memory: keep them private (mode 0600) and think before sharing them.",
        )])
        .done()
}

fn security() -> Roff {
    Page::new()
        .sh("SECURITY")
        .p([
            bold("annotate"),
            roman(" and "),
            bold("strace"),
            roman(" only read their input, and "),
            bold("journal"),
            roman(" only reads the journal. "),
            bold("pid"),
            roman(" and "),
            bold("unit"),
            roman(" act on another process; this is what they do to it."),
        ])
        .tp(
            [roman("D-Bus")],
            [roman(
                "unit asks systemd over D-Bus (the system bus, or the session bus with --user) \
             and only reads: GetUnit, LoadUnit when the unit is not loaded yet, and the \
             properties of the unit and its service. It never asks systemd to kill, stop or \
             restart anything; gorescue sends the signal itself.",
            )],
        )
        .tp(
            [roman("Inspection")],
            [roman(
                "gorescue reads /proc/PID (stat, status, environ, auxv, the executable through \
             exe, and fd 2 through fd and fdinfo), the Go build info in the executable, the \
             fd tables of other processes (who else writes to or reads from fd 2) and the \
             kernel's unix socket table (sock_diag), and changes nothing. --dry-run stops \
             here.",
            )],
        )
        .tp(
            [roman("The signal")],
            [roman(
                "SIGQUIT is sent through a pidfd (pidfd_send_signal), so a process that exited \
             and whose PID was reused is never hit. SIGQUIT ends a Go program: the runtime \
             prints every goroutine's stack and exits with status 2. With GOTRACEBACK=crash \
             in its environment it prints more, then aborts with SIGABRT (a shell shows exit \
             status 134) and may dump core. A program that handles SIGQUIT itself \
             (signal.Notify) prints no dump and keeps running. A service's Restart= decides \
             whether systemd starts it again.",
            )],
        )
        .tp(
            [roman("The file method")],
            [roman(
                "When fd 2 is a regular file, gorescue opens it through /proc/PID/fd/2 (a \
             deleted file works too) before the signal and only reads what the process \
             appends; the process is not traced.",
            )],
        )
        .tp(
            [roman("The ptrace method")],
            [roman(
                "gorescue seizes every thread of the process (PTRACE_SEIZE, then \
             PTRACE_INTERRUPT), so that the process is frozen, and makes one thread run a \
             few injected system calls: mmap of a scratch page, fcntl to keep a copy of fd 2 \
             (close-on-exec, number 100 or above) and to read its flags, memfd_create, dup3 \
             onto fd 2, close, and munmap. While every thread is still frozen it sends \
             SIGQUIT, then restores the registers and detaches; the freeze lasts \
             milliseconds. If anything fails before the signal, fd 2 is put back and the \
             process is released unchanged, also on SIGINT, SIGTERM or SIGHUP. The copy of \
             the original fd 2 stays open in the process. Unless fd 2 was /dev/null, gorescue \
             takes a copy of it (pidfd_getfd) and forwards what it drains, \
             so the original reader (the journal, for a service) still gets the dump. A \
             process that prints nothing (it handles SIGQUIT itself) gets its fd 2 back after \
             --timeout.",
            )],
        )
        .tp(
            [roman("seccomp")],
            [roman(
                "The injected system calls run as the process's own, so they pass through its \
             seccomp filter, such as the one systemd installs for SystemCallFilter=. A \
             filter that forbids one of them makes it fail (gorescue then restores fd 2 and \
             sends nothing) or, if the filter kills on a forbidden call, kills the process. \
             Check the unit's SystemCallFilter= before using the ptrace method on a \
             confined service.",
            )],
        )
        .tp(
            [roman("--keep-running")],
            [roman(
                "Two routes; either way the pause is printed on stderr and given as \
             capture.pause_ms. First, gorescue lists the process's TCP listeners (its socket \
             descriptors, in its own network namespace) and sends each, in turn, GET \
             /debug/pprof/, net/http/pprof's index page, which stops nothing and tells the \
             number of goroutines; this probing happens with --dry-run too, and not with --via \
             snapshot. A listener that is not HTTP gets those bytes and is given up after a \
             second.",
            )],
        )
        .tp(
            [roman("--via pprof")],
            [roman(
                "gorescue fetches /debug/pprof/goroutine?debug=2 from that listener, entering \
             the process's network namespace when it has its own (PrivateNetwork=; root \
             only). gorescue does not stop, trace or signal the process, and no copy of it is \
             made. The Go runtime stops its world while it formats every goroutine, once per \
             buffer size runtime/pprof tries (1 MiB, doubled up to 64 MiB): about 4 \
             microseconds per goroutine per try, so a few ms for 1,000 goroutines, 50 to 80 \
             ms for 10,000, close to a second for 50,000. pause_ms is then the time to the \
             response's first byte, an upper bound of those stops (capture.pause_is_upper_bound). \
             runtime/pprof cuts the listing at 64 MiB; gorescue then reports it incomplete. \
             The listing has the same goroutine format as a SIGQUIT dump, without the \
             registers and without goroutines of the runtime's own that SIGQUIT shows.",
            )],
        )
        .tp(
            [roman("--via snapshot")],
            [roman(
                "gorescue freezes the process as for the ptrace method, injects a fork, and \
             releases the process at once: it is paused while the kernel copies its page \
             tables, about 30 to 40 ms per GiB of resident anonymous memory measured on a \
             small virtual machine (2 to 9 ms for a small service), whatever the number of \
             goroutines. The copy has one thread and every goroutine; gorescue points its fd \
             2 at a memfd of its own, closes its other descriptors, turns off its core dumps \
             and sends it alone SIGQUIT, so the Go runtime's own code prints the dump; the \
             process's stderr gets nothing. Afterwards gorescue makes one thread of the \
             process reap the copy (wait4, tried again for up to 10 s), so no zombie is \
             left. Risks: while the copy prints, every page the process writes is copied, \
             which counts against its memory limit, and the copy uses a CPU in its cgroup; a \
             copy that hangs (a runtime lock held by another thread at the fork) or that runs \
             the program's own SIGQUIT handler is killed after --timeout.",
            )],
        )
        .tp(
            [roman("The choice")],
            [roman(
                "With --keep-running alone gorescue estimates both pauses, the fork's from the \
             process's RssAnon and the listing's from its number of goroutines, and takes the \
             shorter; the listing when the process is already traced (no ptrace is possible \
             then), the snapshot when no listener serves net/http/pprof. The estimates come \
             from benches/keep_running.sh on the development machine; faster hardware \
             shortens both.",
            )],
        )
        .tp(
            [roman("Rights needed")],
            [roman(
                "Root, or: CAP_SYS_PTRACE to read /proc of another user's process and to use \
             the ptrace method, and CAP_KILL to signal another user's process. A user's own \
             process needs no capability for the file method. Yama's \
             kernel.yama.ptrace_scope restricts ptrace further: at 1, a user without \
             CAP_SYS_PTRACE may trace only its own descendants; at 2, only CAP_SYS_PTRACE \
             may trace; at 3, nobody may. A process that is already traced (by a debugger or \
             strace) cannot be traced again. The template unit keeps exactly what it needs; \
             see THE TEMPLATE UNIT.",
            )],
        )
        .tp(
            [roman("The bus and the journal")],
            [roman(
                "Reading a unit's properties over D-Bus needs no privilege. Reading the system \
             journal, which unit does when the service logs there and journal always does, \
             needs root or membership in the systemd-journal group (or adm); other users see \
             only their own journal. Without it, unit still captures the dump, but cannot \
             check the journal's copy or show the context.",
            )],
        )
        .done()
}

fn see_also() -> Roff {
    Page::new()
        .sh("SEE ALSO")
        .t([
            bold("journalctl"),
            roman("(1), "),
            bold("kill"),
            roman("(1), "),
            bold("strace"),
            roman("(1), "),
            bold("systemctl"),
            roman("(1), "),
            bold("systemd-run"),
            roman("(1), "),
            bold("memfd_create"),
            roman("(2), "),
            bold("pidfd_open"),
            roman("(2), "),
            bold("ptrace"),
            roman("(2), "),
            bold("sd-journal"),
            roman("(3), "),
            bold("journald.conf"),
            roman("(5), "),
            bold("proc"),
            roman("(5), "),
            bold("systemd.exec"),
            roman("(5), "),
            bold("systemd.service"),
            roman("(5), "),
            bold("capabilities"),
            roman("(7), "),
            bold("signal"),
            roman("(7)"),
        ])
        .p([roman(
            "journald.conf(5) describes RateLimitIntervalSec= and RateLimitBurst=, the rate \
             limit that cuts big dumps in the journal; systemd.exec(5) the per-unit \
             LogRateLimitIntervalSec=, LogRateLimitBurst=, LogLevelMax= and StandardError=.",
        )])
        .p([roman(
            "The Go runtime's documentation of GOTRACEBACK and of the signals it handles: \
             https://pkg.go.dev/runtime and https://pkg.go.dev/os/signal",
        )])
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_preamble_and_one_title() {
        let page = String::from_utf8(man_page()).unwrap();
        assert_eq!(page.matches(".ds Aq").count(), 2, "{page}");
        assert_eq!(page.matches("\n.TH ").count(), 1);
        assert!(page.is_ascii(), "the page must be ASCII");
    }

    #[test]
    fn completions_name_the_commands() {
        let bash = String::from_utf8(completions(clap_complete::Shell::Bash)).unwrap();
        for sub in [
            "annotate",
            "strace",
            "pid",
            "unit",
            "journal",
            "completions",
        ] {
            assert!(bash.contains(sub), "{sub} missing");
        }
    }
}
