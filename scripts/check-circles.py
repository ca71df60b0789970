#!/usr/bin/env python3
"""check-circles.py — no circles between the files of src/ (docs/layout.md).

  python3 scripts/check-circles.py [BUILD]     (BUILD: a configured and built folder, default build/)

Two graphs, each must be free of cycles:
  1. includes: src/*.[ch] and include/clipneg/*.h, an edge for every #include "..." of a project header;
  2. calls: one node per object of the core library (BUILD/CMakeFiles/clipneg_core.dir/src/*.c.o), an
     edge A -> B when A uses a symbol that B defines (read with `nm`), so a file that calls into another
     file that calls back is found even though their headers never include each other.
Exit code 0 when both are acyclic, 1 with the cycles printed otherwise. Registered as ctest `layout_circles`.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def include_graph():
    graph = {}
    for path in glob.glob(f"{ROOT}/src/*.[ch]") + glob.glob(f"{ROOT}/include/clipneg/*.h"):
        deps = set()
        with open(path, encoding="utf-8") as f:
            for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M):
                h = m.group(1)
                dep = f"include/{h}" if h.startswith("clipneg/") else f"src/{h}"
                if os.path.exists(os.path.join(ROOT, dep)):
                    deps.add(dep)
        graph[os.path.relpath(path, ROOT)] = deps
    return graph


def call_graph(build):
    objs = sorted(glob.glob(f"{build}/CMakeFiles/clipneg_core.dir/src/*.c.o"))
    if not objs:
        sys.exit(f"check-circles: no objects under {build}/CMakeFiles/clipneg_core.dir/src (build first)")
    defines, uses = {}, {}
    for o in objs:
        name = os.path.basename(o)[:-2]  # foo.c.o -> foo.c
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        d, u = set(), set()
        for line in out.splitlines():
            p = line.split()
            if len(p) == 2 and p[0] == "U":
                u.add(p[1])
            elif len(p) == 3 and p[1] in "TDBRCV":  # global text, data, bss, read-only, common, weak
                d.add(p[2])
        defines[name], uses[name] = d, u
    owner = {s: n for n, d in defines.items() for s in d}
    return {n: {owner[s] for s in uses[n] if s in owner and owner[s] != n} for n in defines}


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    bad = 0
    for what, graph in (("includes", include_graph()), ("calls", call_graph(build))):
        found = cycles(graph)
        edges = sum(len(v) for v in graph.values())
        print(f"{what}: {len(graph)} files, {edges} edges, {len(found)} circle(s)")
        for c in found:
            print("  circle: " + " <-> ".join(c))
        bad += len(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
