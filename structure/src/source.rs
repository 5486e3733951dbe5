//! A crate's source as the checks see it: its modules, each with the module
//! paths its code names, and its functions with their lengths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

use crate::Error;

/// A module's path inside its crate: `[]` is the crate root, `["proxy", "h1"]`
/// is `proxy::h1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ModulePath(pub Vec<String>);

impl ModulePath {
    /// True when `self` is a strict ancestor of `other`.
    pub fn is_ancestor_of(&self, other: &ModulePath) -> bool {
        self.0.len() < other.0.len() && other.0.starts_with(&self.0)
    }

    fn child(&self, name: &str) -> ModulePath {
        let mut p = self.0.clone();
        p.push(name.to_string());
        ModulePath(p)
    }
}

impl std::fmt::Display for ModulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("lib")
        } else {
            f.write_str(&self.0.join("::"))
        }
    }
}

/// One module: the `crate::`/`super::`/`self::` paths its code names, as
/// written (segments), not yet resolved.
#[derive(Debug, Default)]
pub struct Module {
    pub named_paths: Vec<Vec<String>>,
}

/// A function and its length in lines, `fn` to closing brace.
#[derive(Debug)]
pub struct Function {
    pub module: ModulePath,
    pub name: String,
    pub lines: usize,
}

/// Every non-test module of one crate's `src/`.
#[derive(Debug, Default)]
pub struct CrateSource {
    pub modules: BTreeMap<ModulePath, Module>,
    functions: Vec<Function>,
}

impl CrateSource {
    /// Reads every `.rs` file under `src`, leaving out the files that a
    /// `#[cfg(test)] mod name;` declares. `main.rs` is its own module
    /// (`main`): the binary's code, which names the library by its crate name.
    pub fn read(src: &Path) -> Result<CrateSource, Error> {
        let mut files = Vec::new();
        collect_rs(src, &mut files)?;
        files.sort();
        let mut krate = CrateSource::default();
        let mut test_modules = BTreeSet::new();
        for path in &files {
            let text = std::fs::read_to_string(path).map_err(|cause| Error::Read {
                path: path.clone(),
                cause,
            })?;
            let ast = syn::parse_file(&text).map_err(|cause| Error::Parse {
                path: path.clone(),
                cause,
            })?;
            let module = module_of(src, path);
            let mut walker = Walker {
                krate: &mut krate,
                module: module.clone(),
                test_modules: &mut test_modules,
            };
            walker.krate.modules.entry(module).or_default();
            walker.visit_file(&ast);
        }
        krate
            .modules
            .retain(|m, _| !test_modules.iter().any(|t| t == m || t.is_ancestor_of(m)));
        krate.functions.retain(|f| {
            !test_modules
                .iter()
                .any(|t| *t == f.module || t.is_ancestor_of(&f.module))
        });
        Ok(krate)
    }

    /// The functions of the crate's non-test modules.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// Resolves a path named in `from` to the deepest existing module it
    /// reaches (`crate::proxy::h1::parse` → `proxy::h1`).
    pub fn resolve(&self, from: &ModulePath, path: &[String]) -> Option<ModulePath> {
        let (mut base, rest) = match path.first().map(String::as_str) {
            Some("crate") => (ModulePath::default(), &path[1..]),
            Some("super" | "self") => {
                let mut base = from.clone();
                let mut i = 0;
                while let Some(seg) = path.get(i) {
                    match seg.as_str() {
                        "super" => {
                            base.0.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    i += 1;
                }
                (base, &path[i..])
            }
            _ => return None,
        };
        let mut best = self.modules.contains_key(&base).then(|| base.clone());
        for seg in rest {
            base = base.child(seg);
            if self.modules.contains_key(&base) {
                best = Some(base.clone());
            }
        }
        best
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), Error> {
    for path in crate::read_dir(dir)? {
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn module_of(src: &Path, file: &Path) -> ModulePath {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.len() == 1 && parts[0] == "main" {
        return ModulePath(parts);
    }
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    ModulePath(parts)
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Walks one file, recording into `krate` under the current module.
struct Walker<'a> {
    krate: &'a mut CrateSource,
    module: ModulePath,
    test_modules: &'a mut BTreeSet<ModulePath>,
}

impl Walker<'_> {
    fn name(&mut self, segments: Vec<String>) {
        if matches!(
            segments.first().map(String::as_str),
            Some("crate" | "super" | "self")
        ) {
            self.krate
                .modules
                .entry(self.module.clone())
                .or_default()
                .named_paths
                .push(segments);
        }
    }

    fn function(&mut self, name: &syn::Ident, fn_token: &syn::token::Fn, block: &syn::Block) {
        let start = fn_token.span.start().line;
        let end = block.brace_token.span.close().end().line;
        self.krate.functions.push(Function {
            module: self.module.clone(),
            name: name.to_string(),
            lines: end.saturating_sub(start) + 1,
        });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                full.push(n.ident.to_string());
                self.name(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.name(full);
            }
            syn::UseTree::Glob(_) => self.name(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// Paths inside macro calls (`format!("{}", crate::x::Y)`) are tokens, not
    /// syntax: find `crate`/`super`/`self` followed by `::` segments.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id)
                    if matches!(id.to_string().as_str(), "crate" | "super" | "self") =>
                {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.name(segments);
                    }
                    i = j - 1;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let child = self.module.child(&m.ident.to_string());
        if is_cfg_test(&m.attrs) {
            self.test_modules.insert(child);
            return;
        }
        if let Some((_, items)) = &m.content {
            let outer = std::mem::replace(&mut self.module, child);
            self.krate.modules.entry(self.module.clone()).or_default();
            for item in items {
                self.visit_item(item);
            }
            self.module = outer;
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        self.function(&f.sig.ident, &f.sig.fn_token, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        self.function(&f.sig.ident, &f.sig.fn_token, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.function(&f.sig.ident, &f.sig.fn_token, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if !is_cfg_test(&u.attrs) {
            self.use_tree(&mut Vec::new(), &u.tree);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.name(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}
