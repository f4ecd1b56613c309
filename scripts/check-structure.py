#!/usr/bin/env python3
"""Structure rules for src/ (issue 12), checked without building anything.

  1. No import cycle among the files of src/. An edge A -> B exists when file
     A names an item of file B through a `crate::` or `super::` path (in a
     `use` tree or inline), through `self::child`, or (in a file that declares
     `mod child;`) through a bare `child::` path. Declaring a module
     (`mod child;`) is not an edge. Test code is excluded: `#[cfg(test)]`
     items and files that are only declared under `#[cfg(test)]`.
  2. No function outside tests longer than 200 lines (signature to closing
     brace, closures and nested items included).
  3. Layers point down: a file may use its own top-level module and the
     modules of lower layers only (LAYERS below), e.g. goruntime never uses
     sources, capture or analyze; sources never uses goruntime.
  4. No hand-written file longer than 1,200 lines, not counting its
     `#[cfg(test)]` blocks. Generated files (first line says GENERATED) are
     exempt.

Usage: python3 scripts/check-structure.py [--graph]   (exit 1 on a violation)
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_FN = 200
# Top-level modules by layer (see docs/ARCHITECTURE.md).
LAYERS = {
    "text": 0, "model": 0, "memory": 0,
    "binary": 1,
    "process": 2, "goruntime": 2, "sources": 2,
    "capture": 3, "analyze": 3,
    "report": 4,
    "cli": 5, "fuzzing": 5,
    "lib": 6,
}
MAX_FILE = 1200


def strip_comments_and_strings(text):
    """Blank out comments, string and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or text[i - 1] == "b" or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append('"' + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + '"')
            i = j
        elif c == "'":
            # char literal or lifetime
            m = re.match(r"'(\\.[^']*|[^'\\])'", text[i:])
            if m:
                out.append("' '" + " " * (len(m.group(0)) - 3))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def match_brace(text, start):
    """Index just past the block whose '{' is at or after `start`."""
    i = text.find("{", start)
    if i < 0:
        return len(text)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def item_end(text, start):
    """End of the item starting at `start`: a `;`-terminated item or a block."""
    semi = text.find(";", start)
    brace = text.find("{", start)
    if brace < 0 or (0 <= semi < brace):
        return semi + 1
    return match_brace(text, start)


def blank_tests(text):
    """Blank `#[cfg(test)]` items (and `#[test]` functions)."""
    test_mods = []
    for m in list(re.finditer(r"#\[cfg\(test\)\]|#\[test\]", text)):
        s = m.start()
        if text[s] != "#":
            continue  # inside an item already blanked
        e = item_end(text, m.end())
        if e <= s:
            e = len(text)
        decl = re.match(r"\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text[m.end():])
        if decl:
            test_mods.append(decl.group(1))
        text = text[:s] + re.sub(r"[^\n]", " ", text[s:e]) + text[e:]
    return text, test_mods


class File:
    def __init__(self, path, modpath):
        self.path = path
        self.modpath = modpath  # tuple of segments from crate root
        with open(path) as f:
            self.raw = f.read()
        self.generated = "GENERATED" in self.raw.split("\n", 1)[0]
        self.code, self.test_mods = blank_tests(strip_comments_and_strings(self.raw))
        self.children = re.findall(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", self.code)


def collect():
    files = {}

    def walk(path, modpath, is_dir_mod):
        f = File(path, modpath)
        files[modpath] = f
        base = os.path.dirname(path) if is_dir_mod else os.path.splitext(path)[0]
        for child in f.children:
            for cand, d in ((os.path.join(base, child + ".rs"), False), (os.path.join(base, child, "mod.rs"), True)):
                if os.path.exists(cand):
                    walk(cand, modpath + (child,), d)
                    break
    walk(os.path.join(ROOT, "lib.rs"), (), True)
    return files


def expand_use(tree):
    """Expand a use tree ('a::{b, c::d}') into full paths (lists of segments)."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def rec(prefix, s):
        # split top-level commas
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        for p in parts:
            m = re.match(r"^(.*?)::\{(.*)\}$", p)
            if p.startswith("{") and p.endswith("}"):
                rec(prefix, p[1:-1])
            elif m:
                rec(prefix + m.group(1).split("::"), m.group(2))
            else:
                p = re.sub(r"as\w+$", "", p) if "as" in p and re.search(r"\bas\b", p.replace("as", " as ")) else p
                segs = [x for x in re.split(r"::", p.split(" as ")[0]) if x]
                out.append(prefix + segs)
    rec([], tree)
    return out


def resolve(files, cur, segs):
    """Map a path (segments) used in file `cur` to the file it names, or None."""
    if not segs:
        return None
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = cur.modpath
        rest = segs
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif segs[0] in cur.children:
        base, rest = cur.modpath, segs
    else:
        return None
    mod = base
    for s in rest:
        s = s.split(" as ")[0]
        if mod + (s,) in files:
            mod = mod + (s,)
        else:
            break
    return mod


USE_RE = re.compile(r"\buse\s+([^;]+);")
PATH_RE = re.compile(r"(?<![\w:])((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::(?:[A-Za-z_][A-Za-z0-9_]*))+)")


def edges(files):
    g = {k: set() for k in files}
    for key, f in files.items():
        code = f.code
        targets = set()
        for m in USE_RE.finditer(code):
            for segs in expand_use(m.group(1)):
                t = resolve(files, f, segs)
                if t is not None:
                    targets.add(t)
        body = USE_RE.sub(lambda m: " " * len(m.group(0)), code)
        for m in PATH_RE.finditer(body):
            segs = m.group(1).split("::")
            t = resolve(files, f, segs)
            if t is not None:
                targets.add(t)
        targets.discard(key)
        g[key] |= {t for t in targets if t in files}
    return g


def cycles(g):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                strong(w)
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
                out.append(comp)
    for v in g:
        if v not in index:
            strong(v)
    return out


def long_functions(f):
    out = []
    code = f.code
    for m in re.finditer(r"\bfn\s+(\w+)\s*(?:<[^{;]*?>)?\s*\(", code):
        # body: first '{' after the signature at depth 0 of parens
        i, depth = m.end(), 1
        while i < len(code) and depth:
            if code[i] == "(":
                depth += 1
            elif code[i] == ")":
                depth -= 1
            i += 1
        j = i
        while j < len(code) and code[j] not in "{;":
            j += 1
        if j >= len(code) or code[j] == ";":
            continue
        end = match_brace(code, j)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        if last - first + 1 > MAX_FN:
            out.append((m.group(1), first, last - first + 1))
    return out


def name(modpath, files):
    return os.path.relpath(files[modpath].path, os.path.join(ROOT, ".."))


def main():
    files = collect()
    test_files = set()
    for k, f in files.items():
        for t in f.test_mods:
            test_files.add(k + (t,))
    for k in list(files):
        if any(k[:i] in test_files for i in range(1, len(k) + 1)):
            del files[k]
    bad = 0
    g = edges(files)
    if "--graph" in sys.argv:
        for k in sorted(g):
            print(name(k, files), "->", ", ".join(sorted(name(t, files) for t in g[k])))
    for comp in cycles(g):
        bad += 1
        names = sorted(name(c, files) for c in comp)
        print(f"import cycle among {len(comp)} files: {', '.join(names)}")
        inside = set(comp)
        for c in sorted(comp):
            for t in sorted(g[c] & inside):
                print(f"    {name(c, files)} -> {name(t, files)}")
    def top(k):
        return k[0] if k else "lib"
    for k in sorted(g):
        for t in sorted(g[k]):
            a, b = top(k), top(t)
            if a != b and LAYERS.get(a, 99) <= LAYERS.get(b, 99):
                bad += 1
                print(f"layer: {name(k, files)} ({a}) uses {name(t, files)} ({b}), which is not below it")
    for k, f in sorted(files.items()):
        for fn, line, n in long_functions(f):
            bad += 1
            print(f"{name(k, files)}:{line}: fn {fn} is {n} lines (max {MAX_FN})")
        if not f.generated:
            n = count_lines(f)
            if n > MAX_FILE:
                bad += 1
                print(f"{name(k, files)}: {n} lines outside tests (max {MAX_FILE})")
    print(f"check-structure: {len(files)} files, {sum(len(v) for v in g.values())} edges, {bad} violation(s)")
    return 1 if bad else 0


def count_lines(f):
    """Lines of the file minus the lines of its #[cfg(test)] blocks."""
    raw = f.raw.split("\n")
    stripped = strip_comments_and_strings(f.raw)
    total = len(raw) - (1 if f.raw.endswith("\n") else 0)
    blanked = 0
    for m in re.finditer(r"#\[cfg\(test\)\]", stripped):
        e = item_end(stripped, m.end())
        blanked += stripped.count("\n", m.start(), e) + 1
    return total - blanked


if __name__ == "__main__":
    sys.exit(main())
