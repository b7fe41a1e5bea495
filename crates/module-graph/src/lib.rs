//! # module-graph: the dependency graph between a crate's modules, and its cycles
//!
//! The workspace keeps its layers pointing one way: crates depend on the
//! crates below them (the compiler enforces that), and inside each crate a
//! module only uses modules that do not use it back. The compiler does not
//! check the second rule, so this crate does, from the sources:
//!
//! 1. [`Crate::load`] parses every file of a crate (with `syn`), from its
//!    root (`lib.rs` or `main.rs`) through its `mod` declarations, file and
//!    inline modules alike; `#[cfg(test)]` modules are left out (a test may
//!    use anything).
//! 2. Every path of every item (`use` trees, types, expressions, macros'
//!    paths) that names a module of the crate (`crate::a::b`, `super::x`,
//!    `self::x`, or a child module by name) is a dependency of the module it
//!    appears in. A name that a module re-exports (`pub use server::McpServer`
//!    at the root) counts as the module it comes from.
//! 3. A dependency between two modules is lifted to the two children of their
//!    closest common ancestor that contain them ([`Crate::sibling_edges`]):
//!    `crate::fleet::bus` using `crate::transport::sse` makes `fleet` depend
//!    on `transport`. A module's use of its own descendants or ancestors is
//!    no dependency between siblings and is not counted.
//! 4. [`Crate::cycles`] reports each set of sibling modules that depend on
//!    each other in a circle (the strongly connected components of more than
//!    one module), with one place of each dependency, so the report says
//!    where to cut.
//!
//! `tests/workspace.rs` runs it over every crate of the workspace.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
};

use syn::{
    Attribute, Item, ItemMod, ItemUse, UseTree,
    visit::{self, Visit},
};

/// A module's path from the crate root: `[]` is the root, `["fleet", "bus"]`
/// is `crate::fleet::bus`.
pub type ModulePath = Vec<String>;

/// Why a crate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A source file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A source file does not parse as Rust.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: syn::Error,
    },
}

/// Where a dependency was seen: a file and a line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// The source file.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One module of a crate and what it refers to.
#[derive(Debug, Default)]
struct Module {
    /// Names this module re-exports or imports (`use a::b::Name`), by the
    /// module path their `use` tree starts from, resolved later.
    imports: Vec<(String, Vec<String>)>,
    /// Paths that appear in the module's items, with where.
    references: Vec<(Vec<String>, Place)>,
}

/// A crate's modules and the paths that appear in each.
#[derive(Debug, Default)]
pub struct Crate {
    modules: BTreeMap<ModulePath, Module>,
}

/// A circle of sibling modules that depend on each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The common parent of the modules (`[]`: the crate root).
    pub parent: ModulePath,
    /// The modules in the circle, by name.
    pub modules: Vec<String>,
    /// Each dependency between two of them, with one place it is seen.
    pub edges: Vec<(String, String, Place)>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parent = if self.parent.is_empty() {
            "crate".to_owned()
        } else {
            format!("crate::{}", self.parent.join("::"))
        };
        writeln!(f, "cycle among {parent}::{{{}}}:", self.modules.join(", "))?;
        for (from, to, place) in &self.edges {
            writeln!(f, "  {from} -> {to} (at {place})")?;
        }
        Ok(())
    }
}

fn is_cfg_test(attributes: &[Attribute]) -> bool {
    attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// The file of module `name` declared in `file` (whose own module directory
/// is `dir`): `dir/name.rs` or `dir/name/mod.rs`, or the `#[path]` given.
fn module_file(dir: &Path, module: &ItemMod) -> Option<PathBuf> {
    for attribute in &module.attrs {
        if attribute.path().is_ident("path")
            && let syn::Meta::NameValue(value) = &attribute.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(path),
                ..
            }) = &value.value
        {
            return Some(dir.join(path.value()));
        }
    }
    let name = module.ident.to_string();
    [
        dir.join(format!("{name}.rs")),
        dir.join(&name).join("mod.rs"),
    ]
    .into_iter()
    .find(|candidate| candidate.is_file())
}

/// Collects the paths of one module's items (not of its child modules).
struct Collector<'a> {
    file: &'a Path,
    module: Module,
    children: Vec<&'a ItemMod>,
}

impl Collector<'_> {
    fn reference(&mut self, segments: Vec<String>, span: proc_macro2::Span) {
        if !segments.is_empty() {
            self.module.references.push((
                segments,
                Place {
                    file: self.file.to_owned(),
                    line: span.start().line,
                },
            ));
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &UseTree, span: proc_macro2::Span) {
        match tree {
            UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree, span);
                prefix.pop();
            }
            UseTree::Name(name) => {
                let mut full = prefix.clone();
                if name.ident != "self" {
                    full.push(name.ident.to_string());
                }
                self.module
                    .imports
                    .push((name.ident.to_string(), full.clone()));
                self.reference(full, span);
            }
            UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                full.push(rename.ident.to_string());
                self.module
                    .imports
                    .push((rename.rename.to_string(), full.clone()));
                self.reference(full, span);
            }
            UseTree::Glob(_) => self.reference(prefix.clone(), span),
            UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree, span);
                }
            }
        }
    }
}

impl<'a> Visit<'a> for Collector<'a> {
    fn visit_item_mod(&mut self, module: &'a ItemMod) {
        // A child module: collected on its own (unless it is a test module).
        if !is_cfg_test(&module.attrs) {
            self.children.push(module);
        }
    }

    fn visit_item_use(&mut self, item: &'a ItemUse) {
        use syn::spanned::Spanned;
        let mut prefix = Vec::new();
        if item.leading_colon.is_some() {
            // `::name` is an external crate: nothing of ours.
            return;
        }
        self.use_tree(&mut prefix, &item.tree, item.span());
    }

    fn visit_item(&mut self, item: &'a Item) {
        let attributes: &[Attribute] = match item {
            Item::Fn(item) => &item.attrs,
            Item::Impl(item) => &item.attrs,
            Item::Const(item) => &item.attrs,
            Item::Static(item) => &item.attrs,
            Item::Struct(item) => &item.attrs,
            Item::Enum(item) => &item.attrs,
            Item::Use(item) => &item.attrs,
            _ => &[],
        };
        if !is_cfg_test(attributes) {
            visit::visit_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'a syn::Path) {
        use syn::spanned::Spanned;
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let segments = path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect();
            self.reference(segments, path.span());
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'a syn::Macro) {
        // A macro's body is tokens; the paths in it (`crate::x::y!`,
        // `tracing::info!(...)`) are found by their `::` joints.
        use syn::spanned::Spanned;
        self.visit_path(&mac.path);
        let text = mac.tokens.to_string().replace(' ', "");
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("crate::")
                || word.starts_with("super::")
                || word.starts_with("self::")
            {
                let segments: Vec<String> = word
                    .split("::")
                    .filter(|segment| !segment.is_empty())
                    .map(str::to_owned)
                    .collect();
                self.reference(segments, mac.span());
            }
        }
    }
}

impl Crate {
    /// Reads the crate whose root file is `root` (`src/lib.rs`,
    /// `src/main.rs`), through its `mod` declarations.
    ///
    /// # Errors
    /// [`GraphError`] for a file that cannot be read or parsed.
    pub fn load(root: &Path) -> Result<Self, GraphError> {
        let mut graph = Self::default();
        let dir = root.parent().unwrap_or(Path::new(".")).to_owned();
        graph.load_file(root, &dir, Vec::new())?;
        Ok(graph)
    }

    fn load_file(&mut self, file: &Path, dir: &Path, path: ModulePath) -> Result<(), GraphError> {
        let text = std::fs::read_to_string(file).map_err(|source| GraphError::Read {
            path: file.to_owned(),
            source,
        })?;
        let parsed = syn::parse_file(&text).map_err(|source| GraphError::Parse {
            path: file.to_owned(),
            source,
        })?;
        if is_cfg_test(&parsed.attrs) {
            return Ok(());
        }
        self.load_items(file, dir, path, &parsed.items)
    }

    fn load_items(
        &mut self,
        file: &Path,
        dir: &Path,
        path: ModulePath,
        items: &[Item],
    ) -> Result<(), GraphError> {
        let mut collector = Collector {
            file,
            module: Module::default(),
            children: Vec::new(),
        };
        for item in items {
            collector.visit_item(item);
        }
        let Collector {
            module, children, ..
        } = collector;
        self.modules.insert(path.clone(), module);
        for child in children {
            let mut child_path = path.clone();
            child_path.push(child.ident.to_string());
            match &child.content {
                Some((_, items)) => {
                    let child_dir = dir.join(child.ident.to_string());
                    self.load_items(file, &child_dir, child_path, items)?;
                }
                None => {
                    if let Some(child_file) = module_file(dir, child) {
                        let child_dir = if child_file.ends_with("mod.rs") {
                            child_file.parent().unwrap_or(dir).to_owned()
                        } else {
                            dir.join(child.ident.to_string())
                        };
                        self.load_file(&child_file, &child_dir, child_path)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The modules of the crate, root first.
    pub fn modules(&self) -> impl Iterator<Item = &ModulePath> {
        self.modules.keys()
    }

    /// The module a path used in `from` starts at, and the rest of it:
    /// `crate::a::b` from anywhere is `[a, b]`; `super::x` is relative to
    /// `from`'s parent; `self::x` and a child module's name to `from`.
    /// `None`: the path starts outside the crate (another crate, a local
    /// name, a prelude type).
    fn anchor(&self, from: &ModulePath, segments: &[String]) -> Option<(ModulePath, usize)> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some((Vec::new(), 1)),
            "self" => Some((from.clone(), 1)),
            "super" => {
                let mut base = from.clone();
                let mut used = 0;
                while segments.get(used).is_some_and(|segment| segment == "super") {
                    base.pop();
                    used += 1;
                }
                Some((base, used))
            }
            name => {
                let mut child = from.clone();
                child.push(name.to_owned());
                if self.modules.contains_key(&child) {
                    Some((from.clone(), 0))
                } else {
                    None
                }
            }
        }
    }

    /// The deepest module `segments` (used in `from`) reaches, following
    /// re-exports up to `depth` times.
    fn resolve(&self, from: &ModulePath, segments: &[String], depth: usize) -> Option<ModulePath> {
        let (mut module, used) = self.anchor(from, segments)?;
        for segment in &segments[used..] {
            let mut child = module.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                module = child;
                continue;
            }
            // A name this module imports from another module of the crate.
            if depth > 0
                && let Some((_, target)) = self.modules[&module]
                    .imports
                    .iter()
                    .find(|(name, _)| name == segment)
                && let Some(origin) = self.resolve(&module, target, depth - 1)
            {
                module = origin;
            }
            break;
        }
        Some(module)
    }

    /// The dependencies between sibling modules: for each parent module, the
    /// edges between its children, with one place each (see the crate docs).
    pub fn sibling_edges(&self) -> BTreeMap<ModulePath, BTreeMap<(String, String), Place>> {
        let mut edges: BTreeMap<ModulePath, BTreeMap<(String, String), Place>> = BTreeMap::new();
        for (from, module) in &self.modules {
            for (segments, place) in &module.references {
                let Some(to) = self.resolve(from, segments, 3) else {
                    continue;
                };
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                // An ancestor or a descendant: not a dependency between siblings.
                if common == from.len() || common == to.len() {
                    continue;
                }
                let parent = from[..common].to_vec();
                edges
                    .entry(parent)
                    .or_default()
                    .entry((from[common].clone(), to[common].clone()))
                    .or_insert_with(|| place.clone());
            }
        }
        edges
    }

    /// Every circle of sibling modules that depend on each other.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut cycles = Vec::new();
        for (parent, edges) in self.sibling_edges() {
            let graph: BTreeMap<&str, BTreeSet<&str>> =
                edges.keys().fold(BTreeMap::new(), |mut graph, (from, to)| {
                    graph.entry(from.as_str()).or_default().insert(to.as_str());
                    graph.entry(to.as_str()).or_default();
                    graph
                });
            for component in strongly_connected(&graph) {
                if component.len() < 2 {
                    continue;
                }
                let members: BTreeSet<&str> = component.iter().copied().collect();
                let cycle_edges = edges
                    .iter()
                    .filter(|((from, to), _)| {
                        members.contains(from.as_str()) && members.contains(to.as_str())
                    })
                    .map(|((from, to), place)| (from.clone(), to.clone(), place.clone()))
                    .collect();
                cycles.push(Cycle {
                    parent: parent.clone(),
                    modules: members.iter().map(|name| (*name).to_owned()).collect(),
                    edges: cycle_edges,
                });
            }
        }
        cycles
    }
}

/// Tarjan's strongly connected components of `graph`.
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: usize,
        indices: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        state: &mut State<'a>,
    ) {
        state.indices.insert(node, state.index);
        state.low.insert(node, state.index);
        state.index += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        for &next in &graph[node] {
            if !state.indices.contains_key(next) {
                visit(next, graph, state);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.low[node].min(state.indices[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.indices[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let mut state = State {
        index: 0,
        indices: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for &node in graph.keys() {
        if !state.indices.contains_key(node) {
            visit(node, graph, &mut state);
        }
    }
    state.components
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (path, text) under a new directory and loads its
    /// `lib.rs`.
    fn load(files: &[(&str, &str)]) -> Crate {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Crate::load(&dir.path().join("lib.rs")).unwrap()
    }

    fn names(cycles: &[Cycle]) -> Vec<Vec<String>> {
        cycles.iter().map(|cycle| cycle.modules.clone()).collect()
    }

    #[test]
    fn a_two_module_cycle_is_found_with_its_places() {
        let graph = load(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "use crate::b::Thing;\npub struct Other;\n"),
            (
                "b.rs",
                "pub struct Thing;\nfn f() -> crate::a::Other { todo!() }\n",
            ),
            ("c.rs", "use crate::a::Other;\n"),
        ]);
        let cycles = graph.cycles();
        assert_eq!(names(&cycles), vec![vec!["a".to_owned(), "b".to_owned()]]);
        let text = cycles[0].to_string();
        assert!(text.contains("a -> b (at "), "{text}");
        assert!(text.contains("b.rs:2"), "{text}");
    }

    #[test]
    fn a_submodule_dependency_counts_for_its_parent_module() {
        let graph = load(&[
            (
                "lib.rs",
                "mod server;\nmod store;\npub use server::Server;\n",
            ),
            (
                "server.rs",
                "use crate::store::Store;\npub struct Server(Store);\n",
            ),
            ("store/mod.rs", "mod memory;\npub use memory::Store;\n"),
            (
                "store/memory.rs",
                "pub struct Store;\nuse super::super::server as _parent_sibling;\n",
            ),
        ]);
        // store::memory -> server is store -> server; with server -> store,
        // a cycle.
        assert_eq!(
            names(&graph.cycles()),
            vec![vec!["server".to_owned(), "store".to_owned()]]
        );
    }

    #[test]
    fn re_exports_count_as_the_module_they_come_from() {
        let graph = load(&[
            (
                "lib.rs",
                "mod launch;\nmod server;\npub use server::Server;\n",
            ),
            ("launch.rs", "use crate::Server;\npub fn go() {}\n"),
            (
                "server.rs",
                "pub struct Server;\nfn f() { crate::launch::go() }\n",
            ),
        ]);
        assert_eq!(
            names(&graph.cycles()),
            vec![vec!["launch".to_owned(), "server".to_owned()]]
        );
    }

    #[test]
    fn test_modules_and_ancestors_are_not_dependencies() {
        let graph = load(&[
            ("lib.rs", "mod a;\nmod b;\npub struct Root;\n"),
            (
                "a.rs",
                "use crate::Root;\npub fn f() {}\n#[cfg(test)]\nmod tests { use crate::b::g; }\n",
            ),
            ("b.rs", "pub fn g() { crate::a::f() }\n"),
        ]);
        assert!(graph.cycles().is_empty(), "{:?}", graph.cycles());
        assert!(
            graph
                .modules()
                .any(|module| module == &vec!["a".to_owned()])
        );
        assert!(
            !graph
                .modules()
                .any(|module| module == &vec!["a".to_owned(), "tests".to_owned()])
        );
    }

    #[test]
    fn paths_inside_macros_count() {
        let graph = load(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "pub fn f() { println!(\"{}\", crate::b::NAME); }\n"),
            (
                "b.rs",
                "pub const NAME: &str = \"b\";\npub fn g() { crate::a::f() }\n",
            ),
        ]);
        assert_eq!(
            names(&graph.cycles()),
            vec![vec!["a".to_owned(), "b".to_owned()]]
        );
    }
}
