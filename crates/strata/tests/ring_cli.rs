//! Black-box tests of `strata ring`: shares, a proposed change, bad input.

use std::process::Command;

fn ring(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("ring")
        .args(args)
        .output()
        .expect("the strata binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn shares_and_a_proposed_add() {
    let (ok, out, err) = ring(&[
        "--nodes",
        "10.0.0.1:7311,10.0.0.2:7311,10.0.0.3:7311",
        "--add",
        "10.0.0.4:7311",
        "--keys",
        "20000",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("scheme ketama, 3 nodes, 20000 sample keys"), "{out}");
    for node in ["10.0.0.1:7311", "10.0.0.2:7311", "10.0.0.3:7311", "10.0.0.4:7311"] {
        assert!(out.contains(node), "{node} in {out}");
    }
    let moved = out
        .lines()
        .find(|line| line.starts_with("keys that would move"))
        .expect("a movement line");
    assert!(moved.contains("a perfect scheme moves 25.00%"), "{moved}");
    // Every flow goes to the new node.
    for flow in out.lines().filter(|line| line.contains(" -> ")) {
        assert!(flow.contains("-> 10.0.0.4:7311"), "{flow}");
    }
}

#[test]
fn a_cluster_file_and_a_removal() {
    let dir = std::env::temp_dir().join(format!("strata-ring-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cluster.toml");
    std::fs::write(
        &path,
        "scheme = \"rendezvous\"\n[pools.main]\nnodes = [\"a:1\", \"b:1*2\", \"c:1\"]\n[pools.gutter]\nnodes = [\"g:1\"]\n",
    )
    .unwrap();
    let (ok, out, err) = ring(&["--config", path.to_str().unwrap(), "--remove", "b:1", "--keys", "10000"]);
    assert!(ok, "{err}");
    assert!(out.contains("scheme rendezvous, 3 nodes"), "{out}");
    for flow in out.lines().filter(|line| line.contains(" -> ")) {
        assert!(flow.trim_start().starts_with("b:1 -> "), "only b's keys move: {flow}");
    }
    let (ok, out, _) = ring(&["--config", path.to_str().unwrap(), "--pool", "gutter"]);
    assert!(ok);
    assert!(out.contains("g:1"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_fails_with_one_line() {
    for args in [
        &["--nodes", "nohost"][..],
        &["--nodes", "a:1,a:1"],
        &["--nodes", "a:1", "--remove", "b:1"],
        &["--config", "/nonexistent/cluster.toml"],
        &["--nodes", "a:1", "--scheme", "modulo"],
    ] {
        let (ok, _, err) = ring(args);
        assert!(!ok, "{args:?} should fail");
        assert!(!err.trim().is_empty(), "{args:?}");
        assert!(err.trim().lines().count() <= 3, "{args:?}: {err}");
    }
}
