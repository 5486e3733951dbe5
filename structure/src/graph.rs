//! The module graph of one crate and its cycles (Tarjan's strongly
//! connected components).

use std::collections::{BTreeMap, BTreeSet};

use crate::source::{CrateSource, ModulePath};

/// Each set of two or more modules that reach each other, sorted.
pub fn cycles(krate: &CrateSource) -> Vec<Vec<ModulePath>> {
    let edges = edges(krate);
    let mut tarjan = Tarjan {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for m in edges.keys() {
        if !tarjan.index.contains_key(m) {
            tarjan.strong(m);
        }
    }
    let mut out = tarjan.out;
    for c in &mut out {
        c.sort();
    }
    out.sort();
    out
}

/// `from → to` when `from`'s code names `to`, and `to` is neither `from`
/// nor one of its ancestors.
fn edges(krate: &CrateSource) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let mut edges = BTreeMap::new();
    for (from, module) in &krate.modules {
        let targets: BTreeSet<ModulePath> = module
            .named_paths
            .iter()
            .filter_map(|p| krate.resolve(from, p))
            .filter(|to| to != from && !to.is_ancestor_of(from))
            .collect();
        edges.insert(from.clone(), targets);
    }
    edges
}

struct Tarjan<'a> {
    edges: &'a BTreeMap<ModulePath, BTreeSet<ModulePath>>,
    index: BTreeMap<ModulePath, usize>,
    low: BTreeMap<ModulePath, usize>,
    stack: Vec<ModulePath>,
    on_stack: BTreeSet<ModulePath>,
    next: usize,
    out: Vec<Vec<ModulePath>>,
}

impl Tarjan<'_> {
    fn strong(&mut self, v: &ModulePath) {
        self.index.insert(v.clone(), self.next);
        self.low.insert(v.clone(), self.next);
        self.next += 1;
        self.stack.push(v.clone());
        self.on_stack.insert(v.clone());
        for w in self.edges.get(v).into_iter().flatten() {
            if !self.index.contains_key(w) {
                self.strong(w);
                let low = self.low[v].min(self.low[w]);
                self.low.insert(v.clone(), low);
            } else if self.on_stack.contains(w) {
                let low = self.low[v].min(self.index[w]);
                self.low.insert(v.clone(), low);
            }
        }
        if self.low[v] == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(&w);
                let done = &w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                self.out.push(component);
            }
        }
    }
}
