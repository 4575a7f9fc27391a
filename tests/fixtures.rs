//! Every real dump fixture (Go 1.19 to 1.27, made by tests/goprog and scripts/make-fixtures.sh)
//! is read with every goroutine, frame and creator, as counted independently in its .meta file.

mod common;

use common::*;
use serde_json::Value;

fn expected_kind(mode: &str) -> &'static str {
    match mode {
        "wedge" | "crash" | "labels" | "synctest" => "sigquit",
        "listing" => "goroutine-listing",
        m if m.starts_with("panic") => "panic",
        m if m.starts_with("fatal") || m == "synctest-deadlock" => "fatal",
        m => panic!("unknown fixture mode {m}"),
    }
}

#[test]
fn every_fixture_is_read_whole() {
    let mut checked = 0;
    for (path, m) in dump_fixtures() {
        let p = path.to_str().unwrap();
        let v = json(&["annotate", p], b"");
        let dumps = v["dumps"].as_array().unwrap();
        assert_eq!(dumps.len(), 1, "{p}: one dump expected");
        let d = &dumps[0];
        assert_eq!(d["kind"], expected_kind(&m["mode"]), "{p}");
        assert_eq!(d["complete"], true, "{p}: should be complete");
        assert_eq!(counts(d), meta_counts(&m), "{p}");
        assert_eq!(d["dump_time_source"], "file-mtime", "{p}");
        checked += 1;
    }
    assert!(checked >= 60);
}

#[test]
fn goroutine_fields_match_the_text() {
    // Check fields goroutine by goroutine against an independent reading of the headers.
    for (path, m) in dump_fixtures() {
        let p = path.to_str().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v = json(&["annotate", p], b"");
        let gs = v["dumps"][0]["goroutines"].as_array().unwrap().clone();
        let headers: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("goroutine ") && l.ends_with(':') && l.contains(" ["))
            .collect();
        assert_eq!(headers.len(), gs.len(), "{p}");
        for (h, g) in headers.iter().zip(&gs) {
            let id: u64 = h[10..].split([' ']).next().unwrap().parse().unwrap();
            assert_eq!(g["id"], id, "{p}: {h}");
            let inside = &h[h.find(" [").unwrap() + 2..];
            let state = g["state"].as_str().unwrap();
            assert!(inside.starts_with(state), "{p}: {h}: state {state}");
            let after = &inside[state.len()..];
            assert!(
                after.starts_with(']') || after.starts_with(',') || after.starts_with(" labels:{"),
                "{p}: {h}: state {state} is not the whole status"
            );
            assert_eq!(
                g["locked_to_thread"],
                h.contains(", locked to thread"),
                "{p}: {h}"
            );
            if let Some(w) = g["wait_minutes"].as_u64() {
                assert!(h.contains(&format!(", {w} minutes")), "{p}: {h}");
            } else {
                assert!(!h.contains(" minutes"), "{p}: {h}");
            }
            for f in g["frames"].as_array().unwrap() {
                let func = f["function"].as_str().unwrap();
                let file = f["file"].as_str().unwrap();
                assert!(!func.is_empty() && !func.contains('\t'), "{p}: {func}");
                assert!(
                    !file.is_empty() && !file.starts_with(' '),
                    "{p}: file {file}"
                );
                assert!(f["line"].as_u64().unwrap() > 0 || file == "?", "{p}");
                let loc = format!("\t{file}:{}", f["line"]);
                assert!(text.contains(&loc), "{p}: no line {loc:?}");
                let call = format!("{func}({})", f["args"].as_str().unwrap());
                assert!(text.contains(&call), "{p}: no call {call:?}");
                if let Some(o) = f["offset"].as_str() {
                    assert!(text.contains(&format!("{loc} +{o}")), "{p}: offset {o}");
                }
            }
            if let Some(cb) = g["created_by"].as_object() {
                let line = match cb["goroutine"].as_u64() {
                    Some(n) => format!(
                        "created by {} in goroutine {n}\n",
                        cb["function"].as_str().unwrap()
                    ),
                    None => format!("created by {}\n", cb["function"].as_str().unwrap()),
                };
                assert!(text.contains(&line), "{p}: {line:?}");
            }
        }
        let version = m["go_version"].as_str();
        // `created by X in goroutine N` exists from Go 1.21 on.
        let any_parent = gs
            .iter()
            .any(|g| g["created_by"]["goroutine"].as_u64().is_some());
        if version == "go1.19.8" {
            assert!(!any_parent, "{p}");
        } else if gs.iter().any(|g| !g["created_by"].is_null()) {
            assert!(any_parent, "{p}: 1.21+ prints the parent goroutine");
        }
    }
}

fn wedge(version: &str) -> Value {
    let p = fixtures().join(version).join("sigquit-wedge.txt");
    json(&["annotate", p.to_str().unwrap()], b"")
}

fn find(d: &Value, pred: impl Fn(&Value) -> bool) -> Vec<&Value> {
    d["dumps"][0]["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| pred(g))
        .collect()
}

fn has_frame(g: &Value, name: &str) -> bool {
    g["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["function"].as_str().unwrap().contains(name))
}

#[test]
fn version_specific_forms() {
    for v in ["go1.19.8", "go1.21.13", "go1.22.10", "go1.25.5", "go1.27.3"] {
        let d = wedge(v);
        // Deep recursion: 1.19 cuts after 100 frames, 1.21+ keeps 50 + 50 around `...N frames elided...`.
        let deep = find(&d, |g| g["elided_frames"] == true);
        assert_eq!(deep.len(), 1, "{v}");
        let n = deep[0]["frames"].as_array().unwrap().len();
        if v == "go1.19.8" {
            assert_eq!(n, 100, "{v}");
        } else {
            assert_eq!(n, 100, "{v}: 50 innermost + 50 outermost");
        }
        // Generics print as [...].
        assert!(!find(&d, |g| has_frame(g, "[...]")).is_empty(), "{v}");
        // A goroutine locked to its thread.
        assert!(
            !find(&d, |g| g["locked_to_thread"] == true).is_empty(),
            "{v}"
        );
        // Mutex waits: semacquire in 1.19, sync.Mutex.Lock later.
        let mutex = find(&d, |g| g["state"] == "sync.Mutex.Lock");
        if v == "go1.19.8" {
            assert!(mutex.is_empty());
        } else {
            assert!(!mutex.is_empty(), "{v}");
        }
    }
}

#[test]
fn labels_in_both_forms() {
    for v in ["go1.26.6", "go1.27.3"] {
        let p = fixtures().join(v).join("labels.txt");
        let d = json(&["annotate", p.to_str().unwrap()], b"");
        let labelled = find(&d, |g| !g["labels"].as_object().unwrap().is_empty());
        assert!(!labelled.is_empty(), "{v}");
        let text = std::fs::read_to_string(&p).unwrap();
        let want = labelled
            .iter()
            .any(|g| g["labels"]["req id"] == "a b" && g["labels"]["worker"] == "w1");
        assert!(
            want,
            "{v}: {:?}",
            labelled.iter().map(|g| &g["labels"]).collect::<Vec<_>>()
        );
        // Every header with labels in the text has them in the JSON.
        let in_text = text
            .lines()
            .filter(|l| {
                l.starts_with("goroutine ") && (l.contains("labels:{") || l.contains("] {"))
            })
            .count();
        assert_eq!(labelled.len(), in_text, "{v}");
        // A label value with `]` and `,` inside quotes does not end the header early.
        let odd = labelled.iter().any(|g| g["labels"]["odd"] == "x], \"y\"");
        assert!(odd, "{v}");
    }
}

#[test]
fn synctest_headers() {
    for v in ["go1.24.11", "go1.25.5", "go1.27.3"] {
        let p = fixtures().join(v).join("synctest.txt");
        let d = json(&["annotate", p.to_str().unwrap()], b"");
        let text = std::fs::read_to_string(&p).unwrap();
        let marker = if v == "go1.24.11" {
            "synctest group"
        } else {
            "synctest bubble"
        };
        let n = text
            .lines()
            .filter(|l| l.starts_with("goroutine ") && l.contains(marker))
            .count();
        assert!(n > 0, "{v}");
        if v != "go1.24.11" {
            assert!(
                !find(&d, |g| g["state"].as_str().unwrap().ends_with(" (durable)")).is_empty(),
                "{v}"
            );
        }
    }
}

#[test]
fn crash_sections_are_one_dump() {
    for (path, m) in dump_fixtures() {
        if m["mode"] != "crash" {
            continue;
        }
        let p = path.to_str().unwrap();
        let d = json(&["annotate", p], b"");
        assert_eq!(d["dumps"].as_array().unwrap().len(), 1, "{p}");
        assert!(num(&m, "sigquit_sections") > 1, "{p}");
        // The goroutines of every section are there, the last section's last.
        let text = std::fs::read_to_string(&path).unwrap();
        let last_header = text.lines().rfind(|l| l.starts_with("goroutine ")).unwrap();
        let last_id: u64 = last_header[10..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let gs = d["dumps"][0]["goroutines"].as_array().unwrap();
        assert_eq!(gs.len() as u64, num(&m, "goroutines"), "{p}");
        assert_eq!(gs.last().unwrap()["id"], last_id, "{p}");
    }
}

#[test]
fn arm64_register_block_ends_the_dump() {
    let p = fixtures().join("arm64/go1.27.3/sigquit-wedge.txt");
    let text = std::fs::read(&p).unwrap();
    let d = json(&["annotate", p.to_str().unwrap()], b"");
    assert_eq!(d["dumps"][0]["complete"], true);
    // Cut inside the register block: incomplete.
    let cut = text.windows(9).position(|w| w == b"\nr20     ").unwrap();
    let d = json(&["annotate"], &text[..cut + 1]);
    assert_eq!(d["dumps"][0]["complete"], false);
    let m = meta(&p.with_extension("meta"));
    assert_eq!(counts(&d["dumps"][0]).goroutines, num(&m, "goroutines"));
}

#[test]
fn raw_is_the_dump_byte_for_byte() {
    for (path, m) in dump_fixtures() {
        if m["mode"] == "listing" {
            continue;
        }
        let text = std::fs::read(&path).unwrap();
        let out = run(
            &["annotate", path.to_str().unwrap(), "--format", "raw"],
            b"",
        );
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&text),
            "{}",
            path.display()
        );
    }
}
