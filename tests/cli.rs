//! The text output, --group, --utc, and bad input: one-line errors with documented codes.

mod common;

use common::*;

fn seed() -> String {
    fixtures()
        .join("seed/sigquit.txt")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn text_keeps_every_line_and_dates_the_headers() {
    let out = run(
        &["annotate", &seed(), "--at", "2022-02-26T09:45:00Z", "--utc"],
        b"",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let original = std::fs::read_to_string(seed()).unwrap();
    // Every original line is there, headers with their original text at the start.
    let mut lines = text.lines();
    for want in original.lines() {
        let got = lines.next().unwrap();
        if want.starts_with("goroutine ") && want.contains(" minutes]") {
            assert!(got.starts_with(want), "{got}");
            assert!(got.len() > want.len());
        } else {
            assert_eq!(got, want);
        }
    }
    assert!(text.contains(
        "goroutine 34 [chan send, 1390 minutes]:  # blocked since ~2022-02-25 10:35 UTC\n"
    ));
    assert!(
        text.contains("goroutine 0 [idle]:\n"),
        "no annotation without minutes"
    );
    // The summary: dump time and source, states, longest waits, clusters, the onset.
    assert!(text.contains("Dump time:   2022-02-26 09:45:00 UTC (given with --at)"));
    assert!(text.contains("Goroutines:  7: 3 chan receive, 2 syscall, 1 chan send, 1 idle"));
    assert!(text.contains("Longest waits:\n  goroutine 1 "));
    assert!(text.contains("The trouble likely began at about 2022-02-25 10:35 UTC: 2 goroutines have been stuck since then in taskrunner.(*Runner).waitInternal.func2, netlink.routeSubscribeAt.func2."), "{text}");
    assert!(text.contains("Times are approximate"));
}

#[test]
fn local_time_with_offset() {
    let mut c = gorescue();
    c.env("TZ", "Europe/Helsinki");
    let out = c
        .args(["annotate", &seed(), "--at", "2022-02-26T09:45:00Z"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "goroutine 34 [chan send, 1390 minutes]:  # blocked since ~2022-02-25 12:35 +02:00"
        ),
        "{text}"
    );
}

#[test]
fn group_prints_identical_stacks_once() {
    // The 1.27 wedge has goroutines parked on identical stacks (the chain of spawners).
    let p = fixtures().join("go1.27.3/sigquit-wedge.txt");
    let p = p.to_str().unwrap();
    let plain: serde_json::Value = json(&["annotate", p], b"");
    let grouped = json(&["annotate", p, "--group"], b"");
    let groups = grouped["dumps"][0]["groups"].as_array().unwrap();
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    let n = plain["dumps"][0]["goroutines"].as_array().unwrap().len() as u64;
    assert_eq!(total, n, "every goroutine is in one group");
    assert!((groups.len() as u64) < n, "some stacks are shared");
    // Groups are largest first, and ids are unique across groups.
    let counts: Vec<u64> = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]));
    let mut ids: Vec<u64> = groups
        .iter()
        .flat_map(|g| {
            g["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap())
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, n);
    // Members of a group share functions, files and lines.
    let gs = plain["dumps"][0]["goroutines"].as_array().unwrap();
    let stack = |id: u64| {
        let g = gs.iter().find(|g| g["id"] == id).unwrap();
        g["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["function"].clone(), f["file"].clone(), f["line"].clone()))
            .collect::<Vec<_>>()
    };
    for grp in groups {
        let ids: Vec<u64> = grp["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        for id in &ids[1..] {
            assert_eq!(stack(*id), stack(ids[0]));
        }
    }
    // Text: one block per group with its count and ids.
    let out = run(&["annotate", p, "--group"], b"");
    let text = String::from_utf8(out.stdout).unwrap();
    let first = &groups[0];
    let head = format!(
        "{} goroutines [{}",
        first["count"],
        first["state"].as_str().unwrap()
    );
    assert!(text.contains(&head), "{head}\n{text}");
    assert!(text.contains("SIGQUIT: quit\n") && text.contains("\nrax "));
}

#[test]
fn bad_input_gets_one_line_and_a_code() {
    let dir = std::env::temp_dir().join(format!("gorescue-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let nodump = dir.join("nodump.txt");
    std::fs::write(
        &nodump,
        b"just a log\npanic: not really followed by goroutines\n",
    )
    .unwrap();
    let missing = dir.join("missing.txt");
    let cases: [(&str, &std::path::Path, i32, &str); 4] = [
        (
            "annotate",
            &empty,
            4,
            "is empty: expected a Go goroutine dump",
        ),
        ("annotate", &nodump, 4, "no goroutine dump found in"),
        ("annotate", &missing, 3, "cannot read"),
        ("annotate", &dir, 3, "is a directory"),
    ];
    for (cmd, path, code, msg) in cases {
        let out = run(&[cmd, path.to_str().unwrap()], b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{path:?}: {err}");
        assert!(err.starts_with("gorescue: ") && err.contains(msg), "{err}");
        assert!(
            err.contains(path.to_str().unwrap()),
            "names the file: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty() || cmd != "annotate" || out.stdout.starts_with(b"{"));
    }
    // Standard input, empty and without a dump; and strace on a log with no writes.
    let out = run(&["annotate"], b"");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input is empty"));
    let out = run(&["strace", nodump.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(4));
    // Usage errors are clap's: code 2.
    let out = run(&["annotate", "--format", "yaml"], b"");
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_file() {
    // As root, permissions do not stop reads; a file under /proc that refuses reads does.
    let out = run(&["annotate", "/proc/self/mem"], b"");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("gorescue: cannot read /proc/self/mem"),
        "{err}"
    );
}
