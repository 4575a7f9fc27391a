//! Dumps wrapped in other input: journalctl output, CRLF, other writers' output, several
//! dumps in one log, non-UTF-8 bytes, cut-off dumps; and where the dump time comes from.

mod common;

use common::*;
use serde_json::Value;

fn wedge127() -> (Vec<u8>, std::collections::BTreeMap<String, String>) {
    let p = fixtures().join("go1.27.3/sigquit-wedge.txt");
    (std::fs::read(&p).unwrap(), meta(&p.with_extension("meta")))
}

fn only_dump(v: &Value) -> &Value {
    let d = v["dumps"].as_array().unwrap();
    assert_eq!(d.len(), 1, "one dump expected");
    &d[0]
}

#[test]
fn journal_modes() {
    let m = meta(&fixtures().join("journal/dumpdemo.meta"));
    let signal = chrono::DateTime::parse_from_rfc3339(&m["signal_time"]).unwrap();
    for mode in [
        "short",
        "short-iso",
        "short-iso-precise",
        "short-precise",
        "short-unix",
        "short-monotonic",
        "cat",
    ] {
        let p = fixtures().join(format!("journal/{mode}.txt"));
        let v = json(&["annotate", p.to_str().unwrap()], b"");
        let d = only_dump(&v);
        assert_eq!(d["kind"], "sigquit", "{mode}");
        assert_eq!(d["complete"], true, "{mode}");
        let c = counts(d);
        assert_eq!(c.goroutines, num(&m, "goroutines"), "{mode}");
        assert_eq!(c.frames, num(&m, "frames"), "{mode}");
        // Location lines had their tab turned into 8 spaces; files must still be clean.
        for g in d["goroutines"].as_array().unwrap() {
            for f in g["frames"].as_array().unwrap() {
                assert!(f["file"].as_str().unwrap().starts_with('/'), "{mode}: {f}");
            }
        }
        match mode {
            "cat" | "short-monotonic" => assert_eq!(d["dump_time_source"], "file-mtime", "{mode}"),
            _ => {
                assert_eq!(d["dump_time_source"], "journal", "{mode}");
                let t =
                    chrono::DateTime::parse_from_rfc3339(d["dump_time"].as_str().unwrap()).unwrap();
                let diff = (t - signal).num_milliseconds().abs();
                assert!(diff < 2000, "{mode}: journal time {t} vs signal {signal}");
            }
        }
    }
}

#[test]
fn journal_of_several_units_keeps_the_dump_together() {
    // Interleave another unit's lines into the dump, as `journalctl -b` shows them.
    let text = std::fs::read_to_string(fixtures().join("journal/short-iso.txt")).unwrap();
    let mut mixed = String::new();
    for (i, l) in text.lines().enumerate() {
        mixed.push_str(l);
        mixed.push('\n');
        if i % 7 == 0 {
            let stamp = l.split(' ').next().unwrap();
            // Lines of another unit that look like dump lines, and one that does not.
            mixed.push_str(&format!("{stamp} vm other[99]: main.fake(0x1)\n"));
            mixed.push_str(&format!(
                "{stamp} vm other[99]:         /src/x.go:12 +0x1\n"
            ));
            mixed.push_str(&format!("{stamp} vm other[99]: GET /healthz 200\n"));
        }
    }
    let m = meta(&fixtures().join("journal/dumpdemo.meta"));
    let v = json(&["annotate"], mixed.as_bytes());
    let d = &v["dumps"][0];
    assert_eq!(counts(d).goroutines, num(&m, "goroutines"));
    assert_eq!(counts(d).frames, num(&m, "frames"));
    assert_eq!(d["complete"], true);
}

#[test]
fn crlf_line_ends() {
    let (text, m) = wedge127();
    let crlf: Vec<u8> = String::from_utf8(text)
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    let v = json(&["annotate"], &crlf);
    let d = only_dump(&v);
    assert_eq!(counts(d), meta_counts(&m));
    assert_eq!(d["complete"], true);
}

#[test]
fn dump_starting_mid_line_among_other_output() {
    let (text, m) = wedge127();
    let mut input =
        b"2026/11/28 08:00:00 serving on :8080\n2026/11/28 08:00:01 half a line ".to_vec();
    input.extend_from_slice(&text);
    input.extend_from_slice(b"2026/11/28 09:00:00 restarted\n");
    let v = json(&["annotate"], &input);
    let d = only_dump(&v);
    assert_eq!(counts(d), meta_counts(&m));
    assert_eq!(d["complete"], true);
    let raw = run(&["annotate", "--format", "raw"], &input);
    assert_eq!(
        raw.stdout, text,
        "raw starts at SIGQUIT: quit and ends at the registers"
    );
}

#[test]
fn other_writers_spliced_into_lines() {
    // Another writer's output lands in the middle of dump lines, as in go-dump-format.md §6.
    let (text, m) = wedge127();
    let s = String::from_utf8(text).unwrap();
    let mut lines: Vec<String> = s.lines().map(String::from).collect();
    // Splice noise into a register line and add whole noise lines between goroutines.
    let rax = lines.iter().position(|l| l.starts_with("rax")).unwrap();
    lines.insert(rax - 1, "gc 3 @66.025s 0%: 0.10+0.16+0.003 ms clock".into());
    lines.insert(5, "GC3 done at 66.0s".into());
    let input = lines.join("\n") + "\n";
    let v = json(&["annotate"], input.as_bytes());
    let d = only_dump(&v);
    assert_eq!(counts(d).goroutines, num(&m, "goroutines"));
    assert_eq!(d["complete"], true);
}

#[test]
fn several_dumps_in_one_log() {
    let mut input = Vec::new();
    let mut want = Vec::new();
    for name in [
        "go1.19.8/sigquit-wedge",
        "go1.27.3/panic",
        "go1.25.5/fatal-deadlock",
        "go1.22.10/listing",
        "go1.27.3/crash",
    ] {
        let p = fixtures().join(format!("{name}.txt"));
        input.extend_from_slice(b"service starting\nlistening\n");
        input.extend_from_slice(&std::fs::read(&p).unwrap());
        let m = meta(&p.with_extension("meta"));
        want.push((name, meta_counts(&m)));
    }
    let v = json(&["annotate"], &input);
    let dumps = v["dumps"].as_array().unwrap();
    assert_eq!(dumps.len(), want.len());
    let kinds: Vec<&str> = dumps.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["sigquit", "panic", "fatal", "goroutine-listing", "sigquit"]
    );
    for (d, (name, c)) in dumps.iter().zip(want) {
        assert_eq!(counts(d), c, "{name}");
        assert_eq!(d["complete"], true, "{name}");
    }
}

#[test]
fn non_utf8_bytes() {
    let (text, m) = wedge127();
    let mut input = b"\xff\xfe garbage \xc3\x28\n".to_vec();
    // Put invalid bytes into a frame's arguments line and a path.
    let s = String::from_utf8(text).unwrap();
    let at = s.find("main.blockChanRecv(").unwrap();
    input.extend_from_slice(&s.as_bytes()[..at]);
    input.extend_from_slice(b"main.blockChanRecv\xff(");
    input.extend_from_slice(&s.as_bytes()[at + "main.blockChanRecv(".len()..]);
    let v = json(&["annotate"], &input);
    let d = only_dump(&v);
    assert_eq!(counts(d), meta_counts(&m));
    let found = d["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["frames"].as_array().unwrap())
        .any(|f| f["function"] == "main.blockChanRecv\u{fffd}");
    assert!(found, "invalid UTF-8 becomes U+FFFD in JSON");
    // The text and raw output keep the bytes as they were.
    let raw = run(&["annotate", "--format", "raw"], &input);
    assert!(
        raw.stdout
            .windows(20)
            .any(|w| w == b"main.blockChanRecv\xff(")
    );
}

#[test]
fn cut_off_dumps_are_kept_and_marked_incomplete() {
    for name in [
        "go1.27.3/sigquit-wedge",
        "go1.19.8/sigquit-wedge",
        "go1.27.3/panic-all",
        "go1.21.13/listing",
    ] {
        let p = fixtures().join(format!("{name}.txt"));
        let text = std::fs::read(&p).unwrap();
        let m = meta(&p.with_extension("meta"));
        let total = num(&m, "goroutines");
        // Cut in the middle of a frame line, about two thirds in.
        let mut cut = text.len() * 2 / 3;
        while text[cut] != b'\t' {
            cut += 1;
        }
        cut += 5;
        let v = json(&["annotate"], &text[..cut]);
        let d = only_dump(&v);
        assert_eq!(d["complete"], false, "{name}");
        let n = counts(d).goroutines;
        assert!(n > 0 && n < total, "{name}: {n} of {total}");
        let text_out = run(&["annotate"], &text[..cut]);
        assert!(text_out.status.success());
        let out = String::from_utf8_lossy(&text_out.stdout);
        assert!(out.contains("Complete:    NO"), "{name}");
        assert!(
            String::from_utf8_lossy(&text_out.stderr).contains("incomplete"),
            "{name}"
        );
    }
}

#[test]
fn dump_time_sources() {
    let p = fixtures().join("seed/sigquit.txt");
    let ps = p.to_str().unwrap();
    // --at wins over everything.
    let v = json(&["annotate", ps, "--at", "2022-02-26T09:45:00Z"], b"");
    let d = only_dump(&v);
    assert_eq!(d["dump_time"], "2022-02-26T09:45:00Z");
    assert_eq!(d["dump_time_source"], "argument");
    let g34 = d["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == 34)
        .unwrap();
    assert_eq!(g34["wait_minutes"], 1390);
    assert_eq!(g34["state"], "chan send");
    assert_eq!(g34["blocked_since"], "2022-02-25T10:35:00Z");
    // Local forms of --at, and the offset kept (TZ=UTC in tests).
    let v = json(&["annotate", ps, "--at", "2022-02-26 09:45"], b"");
    assert_eq!(v["dumps"][0]["dump_time"], "2022-02-26T09:45:00Z");
    let v = json(&["annotate", ps, "--at", "@1645868700"], b"");
    assert_eq!(v["dumps"][0]["dump_time"], "2022-02-26T09:45:00Z");
    // A file's mtime otherwise.
    let v = json(&["annotate", ps], b"");
    assert_eq!(v["dumps"][0]["dump_time_source"], "file-mtime");
    // Nothing at all from standard input.
    let text = std::fs::read(&p).unwrap();
    let v = json(&["annotate"], &text);
    let d = only_dump(&v);
    assert!(d["dump_time"].is_null() && d["dump_time_source"].is_null());
    assert!(d["goroutines"][1]["blocked_since"].is_null());
    let out = run(&["annotate"], &text);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Dump time:   unknown"), "{s}");
    assert!(s.contains("--at"), "{s}");
    // A bad --at is a usage error.
    let out = run(&["annotate", ps, "--at", "yesterday"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("gorescue: invalid --at 'yesterday'"));
}
