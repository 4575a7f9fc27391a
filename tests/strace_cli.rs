//! `gorescue strace` end to end on real strace logs of real Go processes: the reassembled
//! dump is read whole, dated from strace's timestamps, and `--format raw` gives the bytes.

mod common;

use common::*;

fn logs() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for ver in ["go1.19.8", "go1.27.3"] {
        for e in std::fs::read_dir(fixtures().join("strace").join(ver)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 24);
    v
}

#[test]
fn every_log_gives_the_dump() {
    for log in logs() {
        let m = meta(&log.with_extension("meta"));
        let p = log.to_str().unwrap();
        let variant = log.file_stem().unwrap().to_str().unwrap();
        let out = run(&["strace", p, "--format", "json"], b"");
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = &v["dumps"][0];
        assert_eq!(v["dumps"].as_array().unwrap().len(), 1, "{p}");
        assert_eq!(d["kind"], "sigquit", "{p}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if variant == "s32" {
            // Strings cut by -s cannot be recovered: said on stderr, marked incomplete.
            assert_eq!(d["complete"], false, "{p}");
            assert!(stderr.contains("cut by strace's -s limit"), "{p}: {stderr}");
            assert!(stderr.contains("-s 65536"), "{p}");
            assert!(
                !d["goroutines"].as_array().unwrap().is_empty(),
                "{p}: still prints what it read"
            );
            continue;
        }
        assert!(stderr.is_empty(), "{p}: {stderr}");
        assert_eq!(d["complete"], true, "{p}");
        assert_eq!(counts(d), meta_counts(&m), "{p}");
        // Dump time: strace's timestamps where the log has absolute ones.
        let flags = &m["strace_flags"];
        let has_abs = flags
            .split(' ')
            .any(|f| f == "-t" || f == "-tt" || f == "-ttt");
        if has_abs {
            assert_eq!(d["dump_time_source"], "strace", "{p}");
            let t = chrono::DateTime::parse_from_rfc3339(d["dump_time"].as_str().unwrap()).unwrap();
            let s = chrono::DateTime::parse_from_rfc3339(&m["signal_time"]).unwrap();
            let ms = (t - s).num_milliseconds();
            // -t has whole seconds only.
            assert!((-1000..5000).contains(&ms), "{p}: dump {t}, signal {s}");
        } else {
            assert_eq!(d["dump_time_source"], "file-mtime", "{p}: {flags}");
        }
        // Raw: exactly the bytes the process wrote to fd 2.
        let raw = run(&["strace", p, "--format", "raw"], b"");
        assert!(raw.status.success());
        let want = std::fs::read(log.with_extension("stderr")).unwrap();
        assert!(raw.stdout == want, "{p}: raw differs from the real stderr");
    }
}

#[test]
fn seed_log_and_other_fds() {
    let p = fixtures().join("seed/strace.log");
    let p = p.to_str().unwrap();
    let out = run(&["strace", p, "--format", "raw"], b"");
    assert!(out.status.success());
    assert!(out.stdout.starts_with(
        b"SIGQUIT: quit\nPC=0x464ce1 m=0 sigcode=0\n\ngoroutine 0 [idle]:\nruntime.futex()\n\t/usr/local/go/src/runtime/sys_linux_amd64.s:552 +0x21\n"
    ));
    // fd 1 has no writes in this log: no dump, with a hint about --fd.
    let out = run(&["strace", p, "--fd", "1"], b"");
    assert_eq!(out.status.code(), Some(4));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.starts_with("gorescue: no goroutine dump found in "),
        "{e}"
    );
    assert!(e.contains("--fd"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn strace_log_from_stdin_with_crlf() {
    let log = std::fs::read_to_string(fixtures().join("strace/go1.27.3/f-tt.log")).unwrap();
    let m = meta(&fixtures().join("strace/go1.27.3/f-tt.meta"));
    let v = json(&["strace", "-"], log.replace('\n', "\r\n").as_bytes());
    assert_eq!(counts(&v["dumps"][0]), meta_counts(&m));
}
