//! No crate of the workspace has a cycle between its modules: layers point
//! one way inside each crate, as the crates themselves do (see the crate docs
//! of `module-graph` for how dependencies are read).

use std::path::{Path, PathBuf};

use module_graph::Crate;

/// The root files (`src/lib.rs`, `src/main.rs`) of every package under
/// `crates/` and `services/`.
fn crate_roots(workspace: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for group in ["crates", "services"] {
        let Ok(packages) = std::fs::read_dir(workspace.join(group)) else {
            continue;
        };
        for package in packages.flatten() {
            for root in ["src/lib.rs", "src/main.rs"] {
                let path = package.path().join(root);
                if path.is_file() {
                    roots.push(path);
                }
            }
        }
    }
    roots.sort();
    roots
}

#[test]
fn no_crate_has_a_module_cycle() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let roots = crate_roots(&workspace);
    assert!(
        roots.len() >= 10,
        "expected the workspace's crates, found {roots:?}"
    );
    let mut report = String::new();
    let mut modules = 0;
    for root in &roots {
        let graph = Crate::load(root).unwrap_or_else(|error| panic!("{error}"));
        modules += graph.modules().count();
        for cycle in graph.cycles() {
            report.push_str(&format!("{}: {cycle}", root.display()));
        }
    }
    assert!(
        modules > roots.len(),
        "only crate roots were read: {modules} modules"
    );
    assert!(report.is_empty(), "module cycles:\n{report}");
}
