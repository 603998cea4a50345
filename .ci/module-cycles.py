#!/usr/bin/env python3
"""Reports import circles between sibling modules of each crate.

Every `.rs` file under `src/` is a module with a path (`serve/execute.rs` is `serve::execute`,
`serve/mod.rs` is `serve`). A module refers to another through `crate::a::b`, `super::x`,
`self::x` and `use` groups of those (`use crate::{a, b::c}`); test code (`#[cfg(test)] mod …`)
and comments are ignored. For every parent module, its children form a graph: child A points at
child B when A or anything inside A refers to B or anything inside B. A strongly connected
component of more than one child is an import circle. References between a module and its own
ancestors (a child using its parent's items) are not circles.

Exit status 1 when any crate has a circle. Usage: module-cycles.py CRATE_DIR...
"""
import os
import re
import sys


def module_files(src):
    mods = {}
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        base = [] if rel == '.' else rel.split(os.sep)
        if base and base[0] == 'bin':
            continue
        for f in files:
            if not f.endswith('.rs'):
                continue
            if not base and f in ('lib.rs', 'main.rs'):
                path = ()
            elif f == 'mod.rs':
                path = tuple(base)
            else:
                path = tuple(base + [f[:-3]])
            mods[path] = os.path.join(root, f)
    return mods


def strip(text):
    text = re.sub(r'//[^\n]*', '', text)
    out, i = [], 0
    for m in re.finditer(r'#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{', text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {'{': 1, '}': -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return ''.join(out)


def expand_groups(text):
    """`crate::{a, b::c}` -> `crate::a crate::b::c` (one level of braces)."""
    def repl(m):
        prefix, body = m.group(1), m.group(2)
        parts = [p.strip() for p in re.split(r',(?![^{]*\})', body) if p.strip()]
        return ' '.join(f'{prefix}::{p}' for p in parts)
    return re.sub(r'\b((?:crate|super|self)(?:::\w+)*)::\{([^{}]*)\}', repl, text)


def references(path, text, mods):
    refs = set()
    for m in re.finditer(r'\b((?:crate|super|self)(?:::\w+)+)', expand_groups(text)):
        parts = m.group(1).split('::')
        if parts[0] == 'crate':
            target, rest = [], parts[1:]
        else:
            # `super` in `a/b.rs` (module a::b) is `a`; in `a/mod.rs` (module a) it is the root.
            target = list(path)
            rest = parts
            while rest and rest[0] in ('super', 'self'):
                if rest[0] == 'super':
                    target = target[:-1]
                rest = rest[1:]
        for name in rest:
            if tuple(target + [name]) in mods:
                target.append(name)
            else:
                break
        refs.add(tuple(target))
    return refs


def circles(mods):
    refs = {p: references(p, strip(open(f, encoding='utf-8').read()), mods) for p, f in mods.items()}
    found = []
    parents = {p[:-1] for p in mods if p}
    for parent in sorted(parents):
        children = sorted({p[len(parent)] for p in mods if len(p) > len(parent) and p[:len(parent)] == parent})
        graph = {c: set() for c in children}
        for p, rs in refs.items():
            if len(p) <= len(parent) or p[:len(parent)] != parent:
                continue
            a = p[len(parent)]
            for r in rs:
                if len(r) > len(parent) and r[:len(parent)] == parent and r[len(parent)] != a:
                    graph[a].add(r[len(parent)])
        for comp in strongly_connected(graph):
            found.append((parent, comp, graph))
    return found


def strongly_connected(graph):
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def main(dirs):
    bad = False
    for d in dirs:
        mods = module_files(os.path.join(d, 'src'))
        found = circles(mods)
        for parent, comp, graph in found:
            bad = True
            where = '::'.join(('crate',) + parent)
            detail = '; '.join(f"{c} -> {', '.join(sorted(graph[c] & set(comp)))}" for c in comp)
            print(f'{d}: import circle in {where} between {", ".join(comp)} ({detail})')
        if not found:
            print(f'{d}: no import circles ({len(mods)} modules)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
