#!/usr/bin/python3
"""The layers of core/, checked (issue 22; docs/architecture.md).

Each folder of core/ is one layer, and a file includes only headers of its
own layer or of layers below it, named with their folder
("base/log.h"). Within a layer, no circle of files: a file is a unit with
its header (a.c and a.h), and the units' includes must form no cycle.

    check_layers.py SOURCE_DIR            checks core/
    check_layers.py SOURCE_DIR --docs F.. and that every repository path
                                          the documents name exists
    check_layers.py --self-test           the checker fails on an upward
                                          include, on a circle and on a layer
                                          whose main header does not say how
                                          its functions fail
"""
import os
import re
import sys
import tempfile

# lowest first; a layer may include from itself and from those before it
LAYERS = ["base", "codec", "engine", "conf", "net", "daemon"]

# Includes inside the engine that make circles today, each the lower file
# of a pair reaching up to the higher one; kept so that no new circle
# lands while these are undone (docs/architecture.md, "Known debt").
KNOWN_UPWARD = {
    ("engine/chain", "engine/host"):
        "chain.c sets up and tears down each stage's morph_host_t",
    ("engine/plugin_loader", "engine/lua_plugin"):
        "the loader hands NAME.lua files to the Lua bridge",
    ("engine/plugin_loader", "engine/host"):
        "the loader gives load() the process-wide morph_host_t",
    ("engine/options", "engine/plugin_loader"):
        "options.c reads the declarations from morphd_plugin_t",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# Each layer's main header, whose opening comment says how the layer's
# functions fail ("Errors in this layer"): one convention per layer.
MAIN_HEADER = {
    "base": "base/errors.h",
    "codec": "codec/codec.h",
    "engine": "engine/chain.h",
    "conf": "conf/config.h",
    "net": "net/listener.h",
    "daemon": "daemon/server.h",
}


def check_conventions(core):
    errors = []
    for layer, header in MAIN_HEADER.items():
        path = os.path.join(core, header)
        text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        opening = text.split("*/", 1)[0]
        if "Errors in this layer" not in opening:
            errors.append(f"core/{header}: the {layer} layer's main header does "
                          f"not say how its functions fail (\"Errors in this "
                          f"layer\" in its opening comment)")
    return errors


def check(core, known=None):
    known = KNOWN_UPWARD if known is None else known
    errors = []
    units = {}  # "layer/stem" -> set of "layer/stem" it includes
    top = [f for f in os.listdir(core) if os.path.isfile(os.path.join(core, f))]
    for f in sorted(top):
        errors.append(f"core/{f}: a file outside the layers (put it in one of "
                      f"{', '.join(LAYERS)})")
    for d in sorted(os.listdir(core)):
        if os.path.isdir(os.path.join(core, d)) and d not in LAYERS:
            errors.append(f"core/{d}/: a folder that is not a layer (known: "
                          f"{', '.join(LAYERS)})")
    for layer in LAYERS:
        folder = os.path.join(core, layer)
        if not os.path.isdir(folder):
            errors.append(f"core/{layer}/: missing")
            continue
        for f in sorted(os.listdir(folder)):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(folder, f)
            unit = f"{layer}/{f.rsplit('.', 1)[0]}"
            deps = units.setdefault(unit, set())
            text = open(path, encoding="utf-8").read()
            for n, m in enumerate(INCLUDE.finditer(text)):
                target = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                where = f"core/{layer}/{f}:{line}"
                if "/" not in target:
                    if os.path.exists(os.path.join(folder, target)) or any(
                            os.path.exists(os.path.join(core, x, target))
                            for x in LAYERS):
                        errors.append(f'{where}: #include "{target}" names no '
                                      f"layer (write it as LAYER/{target})")
                    continue  # a generated or system header
                tl, name = target.split("/", 1)
                if tl not in LAYERS:
                    continue
                if not os.path.exists(os.path.join(core, tl, name)):
                    errors.append(f'{where}: #include "{target}": no such file')
                    continue
                if LAYERS.index(tl) > LAYERS.index(layer):
                    errors.append(f'{where}: #include "{target}" reaches up: '
                                  f"{layer} is below {tl}")
                dep = f"{tl}/{name.rsplit('.', 1)[0]}"
                if dep != unit and (unit, dep) not in known:
                    deps.add(dep)
    # circles of files: a depth-first search that reports each cycle once
    state, stack, seen_cycles = {}, [], set()

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(units.get(u, ())):
            if state.get(v) == 1:
                cycle = stack[stack.index(v):] + [v]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    errors.append("a circle of files: " + " -> ".join(cycle))
            elif state.get(v) is None and v in units:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(units):
        if state.get(u) is None:
            visit(u)
    return errors


PATH = re.compile(r"`((?:core|include|plugins|cli|sdk|tests|bench|config|"
                  r"docs|packaging|scripts|examples|cmake)/[A-Za-z0-9_./-]+)`")


def check_docs(src, docs):
    errors = []
    for doc in docs:
        text = open(os.path.join(src, doc), encoding="utf-8").read()
        for m in PATH.finditer(text):
            p = m.group(1).rstrip(".")
            if "*" in p or "NAME" in p or "PLUGIN" in p:
                continue
            if not any(os.path.exists(os.path.join(src, p + ext))
                       for ext in ("", ".c")):  # a program, by its source
                line = text.count("\n", 0, m.start()) + 1
                errors.append(f"{doc}:{line}: names {p}, which does not exist")
    return errors


def self_test():
    """The check must fail on an upward include and on a circle."""
    ok = True
    with tempfile.TemporaryDirectory() as d:
        core = os.path.join(d, "core")
        for layer in LAYERS:
            os.makedirs(os.path.join(core, layer))

        def put(p, text):
            with open(os.path.join(core, p), "w") as f:
                f.write(text)

        put("base/log.h", "")
        put("base/log.c", '#include "base/log.h"\n')
        put("daemon/server.h", "")
        if check(core):
            print("self-test: a clean tree was refused:", check(core))
            ok = False
        put("base/log.c", '#include "base/log.h"\n#include "daemon/server.h"\n')
        errs = check(core)
        if not any("reaches up" in e for e in errs):
            print("self-test: an upward include was not seen:", errs)
            ok = False
        put("base/log.c", '#include "base/log.h"\n')
        put("daemon/a.c", '#include "daemon/b.h"\n')
        put("daemon/b.h", "")
        put("daemon/b.c", '#include "daemon/a.h"\n')
        put("daemon/a.h", "")
        errs = check(core)
        if not any("circle" in e for e in errs):
            print("self-test: a circle was not seen:", errs)
            ok = False
        put("daemon/b.c", '#include "a.h"\n')
        errs = check(core)
        if not any("names no layer" in e for e in errs):
            print("self-test: an include without its layer was not seen:", errs)
            ok = False
        put("daemon/server.h", "/* server.h -- no word of errors */\n")
        if not any("daemon layer's main header" in e
                   for e in check_conventions(core)):
            print("self-test: a layer without its error convention was not seen")
            ok = False
    print("self-test:", "ok" if ok else "FAILED")
    return ok


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 64
    src = argv[1]
    errors = check(os.path.join(src, "core"))
    errors += check_conventions(os.path.join(src, "core"))
    if len(argv) > 2 and argv[2] == "--docs":
        errors += check_docs(src, argv[3:])
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} problem(s); the layers are described in "
              f"docs/architecture.md")
        return 1
    print(f"layers ok: {', '.join(LAYERS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
