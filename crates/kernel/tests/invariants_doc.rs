//! `docs/invariants.md` is generated from the invariant catalogue: it must match what the
//! catalogue renders today.

use std::path::PathBuf;

#[test]
fn docs_invariants_md_matches_the_catalogue() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/invariants.md");
    let want = kernel::invariants::render_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write docs/invariants.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/invariants.md is out of date with crates/kernel/src/invariants.rs; regenerate it with\n    \
         UPDATE_DOCS=1 cargo test --release -p kernel --test invariants_doc"
    );
}
