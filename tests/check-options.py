#!/usr/bin/env python3
"""Every NixOS option that endoreg's Nix files set must exist.

Reads the modules, roles, hosts and VM tests (no evaluation: CI has Nix but no nixpkgs), collects the
option paths they define outside their own namespaces (`services.endoreg`, `endoreg`), and checks each
against the NixOS option list (../shared/nix/nixos-options.json, NixOS ~25.05; `_name_` is an attribute-set
element, `_` a list element). Literal values are checked against simple option types (a string where a
boolean belongs, a value outside an enum). Options the list cannot know are in ALLOWED below, each with the
reason.

Usage:
  tests/check-options.py [--options FILE] [--write-extra-options FILE] [--verbose]

`--write-extra-options FILE` writes the options of NEWER_OPTIONS in the option list's format, for
`nixos-offline-eval --extra-options FILE`.

How a file is read: a small Nix parser builds the syntax tree. Module bodies are found as whole files
(MODULE_FILES), as lambdas with module arguments (`{ config, lib, pkgs, ... }:`), as the items of
`modules = [ ... ]` and `imports = [ ... ]`, and as `specialisation.<name>.configuration`. In a module
body, attribute sets are followed through `mkIf`, `mkMerge`, `mkDefault`, `mkForce`, `optionalAttrs`, `//`,
`if`, `let` and let-bound names; any other expression is a value whose path is checked but not entered.
"""

import argparse
import glob
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_OPTIONS = os.path.join(ROOT, "..", "shared", "nix", "nixos-options.json")

# Files that are NixOS modules as a whole (after their leading lambdas).
MODULE_FILES = [
    "nixos-modules/*.nix",
    "roles/*.nix",
    "hosts/common.nix",
    "hosts/disko.nix",
    "hosts/*/default.nix",
    "tests/node.nix",
]
# Not modules themselves: nixos-modules/default.nix and hosts/default.nix assemble modules;
# nixos-modules/sandbox.nix is a systemd `serviceConfig` fragment the service modules merge;
# nixos-modules/credentials.nix a library of functions they call (an option, LoadCredential entries, assertions).
NOT_MODULES = ["nixos-modules/default.nix", "nixos-modules/sandbox.nix", "nixos-modules/credentials.nix"]
# Files scanned for embedded modules (lambdas with module arguments, `modules = [ ... ]`, test nodes).
SCANNED_FILES = MODULE_FILES + ["hosts/default.nix", "tests/*.nix"]

# ---------------------------------------------------------------------------------------------------------
# The allow-list: option paths the NixOS option list does not contain, and why each is right.
ALLOWED = {
    # Our own options, declared by nixos-modules/ and roles/ (checked by the module system itself).
    "services.endoreg": "declared by nixos-modules/registry.nix (and later service modules)",
    "endoreg": "declared by nixos-modules/ and roles/ (endoreg.impermanence, .persistence, .secrets, .roles, .test)",
    # Options of the external modules the flake imports; nixos-offline-eval evaluates them against the
    # real modules (--deep), so their names and types are checked there.
    "age": "agenix (ryantm/agenix, modules/age.nix), imported by nixos-modules/secrets.nix",
    "environment.persistence": "impermanence (nix-community/impermanence, nixos.nix), imported by nixos-modules/impermanence.nix",
    "disko": "disko (nix-community/disko, module.nix), imported by hosts/default.nix",
    # NixOS core options marked internal, so absent from the manual the option list was scraped from.
    "assertions": "nixos/modules/misc/assertions.nix (internal)",
    "warnings": "nixos/modules/misc/assertions.nix (internal)",
}

# Options added to NixOS after the option list was taken (it describes ~25.05; the flake pins 26.05).
# Each is also written, in the list's format, by --write-extra-options for nixos-offline-eval.
NEWER_OPTIONS = [
    # nixos/modules/services/monitoring/prometheus/exporters/nvidia-gpu.nix (utkuozdemir/nvidia_gpu_exporter),
    # used by roles/ai-deploy.nix. The exporter options every exporter module has:
    {"Name": "services.prometheus.exporters.nvidia-gpu.enable", "Type": "boolean", "Default": "false",
     "Desc": "Whether to enable the Prometheus NVIDIA GPU exporter."},
    {"Name": "services.prometheus.exporters.nvidia-gpu.port",
     "Type": "16 bit unsigned integer; between 0 and 65535 (both inclusive)", "Default": "9835",
     "Desc": "Port to listen on."},
    {"Name": "services.prometheus.exporters.nvidia-gpu.listenAddress", "Type": "string",
     "Default": "&quot;0.0.0.0&quot;", "Desc": "Address to listen on."},
    {"Name": "services.prometheus.exporters.nvidia-gpu.openFirewall", "Type": "boolean", "Default": "false",
     "Desc": "Open port in firewall for incoming connections."},
    {"Name": "services.prometheus.exporters.nvidia-gpu.extraFlags", "Type": "list of string",
     "Default": "[ ]", "Desc": "Extra commandline options to pass to the exporter."},
    {"Name": "services.prometheus.exporters.nvidia-gpu.user", "Type": "string",
     "Default": "&quot;nvidia-gpu-exporter&quot;", "Desc": "User name under which the exporter shall be run."},
    {"Name": "services.prometheus.exporters.nvidia-gpu.group", "Type": "string",
     "Default": "&quot;nvidia-gpu-exporter&quot;", "Desc": "Group under which the exporter shall be run."},
]

# Option paths whose value is itself a NixOS module.
MODULE_VALUED = {"specialisation._name_.configuration"}

# Functions whose last argument (mkMerge: each list item) is configuration.
WRAPPERS = {"mkIf", "mkDefault", "mkForce", "mkOverride", "mkBefore", "mkAfter", "mkOrder", "optionalAttrs",
            "mkVMOverride", "mkImageMediaOverride", "mkOptionDefault", "mkMerge"}
MODULE_ARGS = {"config", "lib", "pkgs", "options", "modulesPath", "utils"}
SPECIAL_KEYS = {"imports", "options", "_file", "key", "meta", "disabledModules", "_class", "freeformType"}


# ---------------------------------------------------------------------------------------------------------
# Nix lexer

class NixSyntaxError(Exception):
    pass


KEYWORDS = {"let", "in", "if", "then", "else", "assert", "with", "rec", "inherit", "or"}
PATH_RE = re.compile(r"(~|[A-Za-z0-9._\-+]*)(/[A-Za-z0-9._\-+]+)+/?")
PATH_START_RE = re.compile(r"(\.{1,2}|~|[A-Za-z0-9._\-+]*)/(?=\$\{)")
SPATH_RE = re.compile(r"<[A-Za-z0-9._\-+]+(/[A-Za-z0-9._\-+]+)*>")
URI_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+\-.]*:[a-zA-Z0-9%/?:@&=+$,\-_.!~*']+")
ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_'\-]*")
NUM_RE = re.compile(r"(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
OPS = ["...", "${", "//", "++", "==", "!=", "<=", ">=", "&&", "||", "->", "|>", "<|",
       "+", "-", "*", "/", "?", "!", "<", ">", ":", ";", ",", ".", "=", "@", "(", ")", "[", "]", "{", "}"]


class Tok:
    __slots__ = ("kind", "value", "line")

    def __init__(self, kind, value, line):
        self.kind, self.value, self.line = kind, value, line

    def __repr__(self):
        return f"{self.kind}:{self.value!r}@{self.line}"


class Lexer:
    """Tokens; strings and interpolated paths become one token holding their parts (text or token lists)."""

    def __init__(self, text, name):
        self.s, self.i, self.name, self.line = text, 0, name, 1

    def error(self, msg):
        raise NixSyntaxError(f"{self.name}:{self.line}: {msg}")

    def skip(self):
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\n":
                self.line += 1
                self.i += 1
            elif c == "#":
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            elif s.startswith("/*", self.i):
                j = s.find("*/", self.i + 2)
                if j < 0:
                    self.error("unterminated comment")
                self.line += s.count("\n", self.i, j)
                self.i = j + 2
            else:
                return

    def interpolation(self):
        """At `${`: the tokens up to the matching `}`."""
        self.i += 2
        toks, depth = [], 1
        while True:
            t = self.next()
            if t.kind == "eof":
                self.error("unterminated ${")
            if t.kind == "op" and t.value in ("{", "${"):
                depth += 1
            elif t.kind == "op" and t.value == "}":
                depth -= 1
                if depth == 0:
                    return toks
            toks.append(t)

    def string(self):
        line, parts, buf = self.line, [], []
        self.i += 1
        s = self.s
        while True:
            if self.i >= len(s):
                self.error("unterminated string")
            c = s[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\":
                buf.append(s[self.i + 1])
                self.i += 2
            elif s.startswith("${", self.i):
                parts.append("".join(buf))
                buf = []
                parts.append(self.interpolation())
            else:
                if c == "\n":
                    self.line += 1
                buf.append(c)
                self.i += 1
        parts.append("".join(buf))
        return Tok("str", parts, line)

    def indented(self):
        line, parts, buf = self.line, [], []
        self.i += 2
        s = self.s
        while True:
            if self.i >= len(s):
                self.error("unterminated ''string")
            if s.startswith("'''", self.i):
                buf.append("''")
                self.i += 3
            elif s.startswith("''$", self.i):
                buf.append("$")
                self.i += 3
            elif s.startswith("''\\", self.i):
                buf.append(s[self.i + 2])
                self.i += 3
            elif s.startswith("''", self.i):
                self.i += 2
                break
            elif s.startswith("${", self.i):
                parts.append("".join(buf))
                buf = []
                parts.append(self.interpolation())
            else:
                if s[self.i] == "\n":
                    self.line += 1
                buf.append(s[self.i])
                self.i += 1
        parts.append("".join(buf))
        return Tok("str", parts, line)

    def next(self):
        self.skip()
        s, i, line = self.s, self.i, self.line
        if i >= len(s):
            return Tok("eof", None, line)
        c = s[i]
        if c == '"':
            return self.string()
        if s.startswith("''", i):
            return self.indented()
        m = PATH_START_RE.match(s, i)
        if m and (m.group(1) or c == "/"):
            # a path with interpolation: ./foo/${bar}
            parts = [m.group(0)]
            self.i = m.end()
            while s.startswith("${", self.i):
                parts.append(self.interpolation())
                m2 = re.compile(r"[A-Za-z0-9._\-+/]*").match(s, self.i)
                parts.append(m2.group(0))
                self.i = m2.end()
            return Tok("path", parts, line)
        m = PATH_RE.match(s, i)
        if m and "/" in m.group(0) and not s.startswith("//", i):
            self.i = m.end()
            return Tok("path", [m.group(0)], line)
        m = SPATH_RE.match(s, i)
        if m:
            self.i = m.end()
            return Tok("path", [m.group(0)], line)
        m = URI_RE.match(s, i)
        if m and ID_RE.match(s, i) and "://" in m.group(0):
            self.i = m.end()
            return Tok("str", [m.group(0)], line)
        m = NUM_RE.match(s, i)
        if m and (c.isdigit() or (c == "." and i + 1 < len(s) and s[i + 1].isdigit())):
            self.i = m.end()
            return Tok("num", m.group(0), line)
        m = ID_RE.match(s, i)
        if m:
            self.i = m.end()
            v = m.group(0)
            return Tok("kw" if v in KEYWORDS else "id", v, line)
        for op in OPS:
            if s.startswith(op, i):
                if op == "${":
                    # dynamic attribute name: keep as its own token kind with the inner tokens
                    return Tok("dyn", self.interpolation(), line)
                self.i += len(op)
                return Tok("op", op, line)
        self.error(f"unexpected character {c!r}")


def tokenize(text, name):
    lx = Lexer(text, name)
    toks = []
    while True:
        t = lx.next()
        toks.append(t)
        if t.kind == "eof":
            return toks


# ---------------------------------------------------------------------------------------------------------
# Nix parser: a syntax tree of tuples (kind, ...). Operator precedence as in the Nix manual.

BINARY = [  # loosest first; (operators, right-associative)
    ({"|>"}, False), ({"<|"}, True), ({"->"}, True), ({"||"}, False), ({"&&"}, False), ({"==", "!="}, False),
    ({"<", ">", "<=", ">="}, False), ({"//"}, True), None,  # `!` (unary) sits here
    ({"+", "-"}, False), ({"*", "/"}, False), ({"++"}, True), ({"?"}, False),
]


class Parser:
    def __init__(self, toks, name):
        self.t, self.p, self.name = toks, 0, name

    def peek(self, k=0):
        return self.t[min(self.p + k, len(self.t) - 1)]

    def error(self, msg):
        raise NixSyntaxError(f"{self.name}:{self.peek().line}: {msg} (at {self.peek()!r})")

    def is_op(self, v, k=0):
        t = self.peek(k)
        return t.kind == "op" and t.value == v

    def is_kw(self, v, k=0):
        t = self.peek(k)
        return t.kind == "kw" and t.value == v

    def expect_op(self, v):
        if not self.is_op(v):
            self.error(f"expected {v!r}")
        self.p += 1

    def expect_kw(self, v):
        if not self.is_kw(v):
            self.error(f"expected {v!r}")
        self.p += 1

    def parse_file(self):
        e = self.expr()
        if self.peek().kind != "eof":
            self.error("trailing input")
        return e

    def expr(self):
        t = self.peek()
        line = t.line
        if t.kind == "id" and self.is_op(":", 1):
            self.p += 2
            return ("lambda", {"name": t.value, "formals": None}, self.expr(), line)
        if t.kind == "id" and self.is_op("@", 1) and self.is_op("{", 2):
            self.p += 2
            formals = self.formals()
            self.expect_op(":")
            return ("lambda", {"name": t.value, "formals": formals}, self.expr(), line)
        if self.is_op("{"):
            save = self.p
            try:
                formals = self.formals()
                name = None
                if self.is_op("@"):
                    self.p += 1
                    name = self.peek().value
                    self.p += 1
                if self.is_op(":"):
                    self.p += 1
                    return ("lambda", {"name": name, "formals": formals}, self.expr(), line)
            except NixSyntaxError:
                pass
            self.p = save
        if self.is_kw("let") and not self.is_op("{", 1):
            self.p += 1
            binds = self.bindings("in")
            self.expect_kw("in")
            return ("let", binds, self.expr(), line)
        if self.is_kw("with"):
            self.p += 1
            e = self.expr()
            self.expect_op(";")
            return ("with", e, self.expr(), line)
        if self.is_kw("assert"):
            self.p += 1
            e = self.expr()
            self.expect_op(";")
            return ("assert", e, self.expr(), line)
        if self.is_kw("if"):
            self.p += 1
            c = self.expr()
            self.expect_kw("then")
            a = self.expr()
            self.expect_kw("else")
            return ("if", c, a, self.expr(), line)
        return self.binary(0)

    def formals(self):
        self.expect_op("{")
        names = []
        while not self.is_op("}"):
            if self.is_op("..."):
                self.p += 1
                names.append("...")
            else:
                t = self.peek()
                if t.kind != "id":
                    self.error("not formals")
                self.p += 1
                names.append(t.value)
                if self.is_op("?"):
                    self.p += 1
                    self.expr()
            if self.is_op(","):
                self.p += 1
            elif not self.is_op("}"):
                self.error("not formals")
        self.p += 1
        return names

    def binary(self, level):
        if level >= len(BINARY):
            return self.unary_minus()
        spec = BINARY[level]
        if spec is None:  # logical not
            if self.is_op("!"):
                line = self.peek().line
                self.p += 1
                return ("not", self.binary(level), line)
            return self.binary(level + 1)
        ops, right = spec
        left = self.binary(level + 1)
        while self.peek().kind == "op" and self.peek().value in ops:
            op, line = self.peek().value, self.peek().line
            self.p += 1
            if op == "?":
                left = ("hasattr", left, self.attrpath(), line)
                continue
            rhs = self.binary(level if right else level + 1)
            left = ("binop", op, left, rhs, line)
            if right:
                break
        return left

    def unary_minus(self):
        if self.is_op("-"):
            line = self.peek().line
            self.p += 1
            return ("neg", self.unary_minus(), line)
        return self.application()

    def application(self):
        fn = self.select()
        args = []
        while self.starts_atom():
            args.append(self.select())
        if args:
            return ("app", fn, args, fn[-1])
        return fn

    def starts_atom(self):
        t = self.peek()
        if t.kind in ("id", "num", "str", "path"):
            return True
        if t.kind == "kw" and t.value in ("rec", "let") and self.is_op("{", 1):
            return True
        return t.kind == "op" and t.value in ("(", "[", "{")

    def select(self):
        e = self.atom()
        while self.is_op("."):
            self.p += 1
            path = self.attrpath()
            default = None
            if self.is_kw("or"):
                self.p += 1
                default = self.select()
            e = ("select", e, path, default, e[-1])
        return e

    def attrpath(self):
        path = [self.attrname()]
        while self.is_op("."):
            self.p += 1
            path.append(self.attrname())
        return path

    def attrname(self):
        t = self.peek()
        self.p += 1
        if t.kind in ("id", "kw"):
            return ("name", t.value)
        if t.kind == "str":
            if len(t.value) == 1:
                return ("name", t.value[0])
            return ("dynamic", None)
        if t.kind == "dyn":
            return ("dynamic", None)
        self.p -= 1
        self.error("expected an attribute name")

    def atom(self):
        t = self.peek()
        line = t.line
        if t.kind == "id":
            self.p += 1
            return ("var", t.value, line)
        if t.kind == "num":
            self.p += 1
            return ("num", t.value, line)
        if t.kind == "str":
            self.p += 1
            return ("str", t.value, line)
        if t.kind == "path":
            self.p += 1
            return ("path", t.value, line)
        if self.is_op("("):
            self.p += 1
            e = self.expr()
            self.expect_op(")")
            return e
        if self.is_op("["):
            self.p += 1
            items = []
            while not self.is_op("]"):
                items.append(self.select())
            self.p += 1
            return ("list", items, line)
        if self.is_kw("rec") or self.is_kw("let"):
            self.p += 1
            self.expect_op("{")
            binds = self.bindings("}")
            self.expect_op("}")
            return ("attrs", binds, line)
        if self.is_op("{"):
            self.p += 1
            binds = self.bindings("}")
            self.expect_op("}")
            return ("attrs", binds, line)
        self.error("expected an expression")

    def bindings(self, end):
        binds = []
        while not (self.is_op(end) if end == "}" else self.is_kw(end)):
            line = self.peek().line
            if self.is_kw("inherit"):
                self.p += 1
                source = None
                if self.is_op("("):
                    self.p += 1
                    source = self.expr()
                    self.expect_op(")")
                names = []
                while not self.is_op(";"):
                    names.append(self.attrname())
                self.p += 1
                binds.append(("inherit", source, names, line))
                continue
            path = self.attrpath()
            self.expect_op("=")
            value = self.expr()
            self.expect_op(";")
            binds.append(("bind", path, value, line))
        return binds


def parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rel = os.path.relpath(path, ROOT)
    return Parser(tokenize(text, rel), rel).parse_file()


# ---------------------------------------------------------------------------------------------------------
# The option tree

class Node:
    __slots__ = ("children", "type", "name")

    def __init__(self, name):
        self.children, self.type, self.name = {}, None, name


def option_tree(entries):
    root = Node("")
    for e in entries:
        node = root
        for seg in e["Name"].split("."):
            node = node.children.setdefault(seg, Node(seg))
        node.type = e.get("Type") or "unspecified value"
    return root


SCALAR_TYPES = re.compile(r"^(null or )?(boolean|signed integer|string|path|package|(16 bit unsigned|positive|unsigned) integer.*)$")


def literal_problem(type_, value):
    """A reason why a literal value cannot have the option's type, or None."""
    kind = value[0]
    t = type_.replace("&gt;", ">")
    if kind == "var" and value[1] in ("true", "false"):
        lit = "a boolean"
        ok = "boolean" in t
    elif kind == "var" and value[1] == "null":
        lit = "null"
        ok = t.startswith("null or") or "null" in t or "unspecified" in t
    elif kind == "num":
        lit = "a number"
        ok = "integer" in t or "float" in t or "number" in t or "convertible" in t
    elif kind == "str" and len(value[1]) == 1:
        lit = "a string"
        s = value[1][0]
        enum = re.match(r"^(null or )?one of (.*)$", t)
        if enum and "string" not in t:
            choices = re.findall(r"“([^”]*)”", enum.group(2))
            if choices and s not in choices:
                return f"`{s}` is not one of {', '.join(choices)}"
            return None
        ok = any(w in t for w in ("string", "path", "package", "one of", "str", "value", "option", "convertible"))
    else:
        return None
    if ok or not SCALAR_TYPES.match(t) and not t.startswith("one of") and not t.startswith("null or one of"):
        return None
    return f"{lit} for an option of type `{type_}`"


# ---------------------------------------------------------------------------------------------------------
# Walking modules

class Checker:
    def __init__(self, tree, verbose=False):
        self.tree, self.verbose = tree, verbose
        self.problems, self.checked, self.seen = [], set(), set()

    def problem(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def allowed(self, path):
        dotted = ".".join(path)
        for prefix in ALLOWED:
            if dotted == prefix or dotted.startswith(prefix + "."):
                return True
        return False

    # -- module bodies --------------------------------------------------------------------------------
    def module(self, expr, file, scope):
        """expr is a module: a lambda returning an attribute set, or an attribute set."""
        if id(expr) in self.seen:
            return
        self.seen.add(id(expr))
        expr, scope = self.unwrap(expr, scope, lambdas=True)
        if expr is None or expr[0] != "attrs":
            return
        binds = expr[1]
        keys = {b[1][0][1] for b in binds if b[0] == "bind" and b[1][0][0] == "name"}
        for b in binds:
            if b[0] != "bind":
                continue
            head = b[1][0]
            name = head[1] if head[0] == "name" else None
            if name == "imports":
                self.module_list(b[2], file, scope)
        if "config" in keys or "options" in keys:
            for b in binds:
                if b[0] == "bind" and b[1][0] == ("name", "config"):
                    rest = [n for n in b[1][1:]]
                    self.walk_binding(rest, b[2], [], file, scope, b[3])
        else:
            self.walk_attrs(expr, [], file, scope, skip=SPECIAL_KEYS)

    def module_list(self, expr, file, scope):
        expr, scope = self.unwrap(expr, scope)
        if expr is not None and expr[0] == "list":
            for item in expr[1]:
                it, sc = self.unwrap(item, scope)
                if it is not None and it[0] in ("attrs", "lambda"):
                    self.module(it, file, sc)
        elif expr is not None and expr[0] == "binop" and expr[1] == "++":
            self.module_list(expr[2], file, scope)
            self.module_list(expr[3], file, scope)

    def unwrap(self, expr, scope, lambdas=False, depth=0):
        """Follow parentheses, let, with, assert, variables bound by let (and lambdas when asked)."""
        while expr is not None and depth < 50:
            depth += 1
            k = expr[0]
            if k == "let":
                scope = dict(scope)
                for b in expr[1]:
                    if b[0] == "bind" and len(b[1]) == 1 and b[1][0][0] == "name":
                        scope[b[1][0][1]] = (b[2], scope)
                expr = expr[2]
            elif k in ("with", "assert"):
                expr = expr[2]
            elif k == "lambda" and lambdas:
                scope = dict(scope)
                for n in (expr[1]["formals"] or []) + ([expr[1]["name"]] if expr[1]["name"] else []):
                    scope.pop(n, None)
                expr = expr[2]
            elif k == "var" and expr[1] in scope:
                expr, scope = scope[expr[1]]
            else:
                return expr, scope
        return None, scope

    # -- configuration ----------------------------------------------------------------------------------
    def walk_attrs(self, expr, path, file, scope, skip=()):
        for b in expr[1]:
            if b[0] == "inherit":
                for n in b[2]:
                    if n[0] == "name":
                        self.check(path + [n[1]], None, file, b[3], scope)
                continue
            _, names, value, line = b
            if not path and names[0][0] == "name" and names[0][1] in skip:
                if names[0][1] == "imports":
                    continue
                continue
            self.walk_binding(names, value, path, file, scope, line)

    def walk_binding(self, names, value, path, file, scope, line):
        full = path + [n[1] if n[0] == "name" else None for n in names]
        self.config_value(full, value, file, scope, line)

    def config_value(self, path, value, file, scope, line):
        """`path = value` in configuration: check path; enter value if it is more configuration."""
        node = self.check(path, value, file, line, scope)
        if node is False:
            return  # reported, or an allowed/own namespace
        value, scope = self.unwrap(value, scope)
        if value is None:
            return
        k = value[0]
        if k == "app":
            fn = value[1]
            fname = fn[2][-1][1] if fn[0] == "select" else fn[1] if fn[0] == "var" else None
            if fname in WRAPPERS and value[2]:
                arg = value[2][-1]
                if fname == "mkMerge":
                    arg, sc = self.unwrap(arg, scope)
                    if arg is not None and arg[0] == "list":
                        for item in arg[1]:
                            self.config_value(path, item, file, sc, line)
                    return
                self.config_value(path, arg, file, scope, line)
            return
        if k == "binop" and value[1] == "//":
            self.config_value(path, value[2], file, scope, line)
            self.config_value(path, value[3], file, scope, line)
            return
        if k == "if":
            self.config_value(path, value[2], file, scope, line)
            self.config_value(path, value[3], file, scope, line)
            return
        if node is None:
            return
        dotted = self.dotted(path)
        if dotted in MODULE_VALUED:
            self.module(value, file, scope)
            return
        if k == "attrs":
            if node is True or node.children:
                for b in value[1]:
                    if b[0] == "inherit":
                        for n in b[2]:
                            if n[0] == "name":
                                self.check(path + [n[1]], None, file, b[3], scope)
                    else:
                        self.walk_binding(b[1], b[2], path, file, scope, b[3])
        elif k == "list" and node is not True and "_" in node.children:
            for item in value[1]:
                it, sc = self.unwrap(item, scope)
                if it is not None and it[0] == "attrs":
                    self.config_value(path + ["_"], it, file, sc, line)

    def dotted(self, path):
        return ".".join("_name_" if p is None else p for p in path)

    def resolve(self, path):
        """The option node for path, True inside a value (past a leaf option), or an error message."""
        node = self.tree
        for i, seg in enumerate(path):
            if seg is not None and seg in node.children:
                node = node.children[seg]
            elif "_name_" in node.children:
                node = node.children["_name_"]
            elif seg == "_" and "_" in node.children:
                node = node.children["_"]
            elif node.type is not None and not (node.type == "submodule" and node.children):
                # inside the value of an option (an attribute set, freeform settings, ...)
                if SCALAR_TYPES.match(node.type):
                    return f"`{'.'.join(p or '<name>' for p in path[:i])}` has type `{node.type}`, not an attribute set"
                return True
            else:
                shown = ".".join(p if p is not None else "<name>" for p in path[: i + 1])
                return f"the option `{shown}` does not exist in the NixOS option list"
        return node

    def check(self, path, value, file, line, scope):
        """Checks path (and a literal value); returns the option node, True inside a value, or False."""
        if any(p is None for p in path[:1]):
            return False
        if self.allowed([p for p in path if p is not None]) or (path and self.allowed(path[:1])):
            return False
        if path and path[0] == "_module":
            return False
        where = f"{file}:{line}"
        node = self.resolve(path)
        dotted = self.dotted(path)
        if isinstance(node, str):
            self.problem(where, node)
            return False
        self.checked.add(dotted)
        if node is True:
            return True
        if node.type is not None and value is not None:
            v, _ = self.unwrap(value, scope)
            if v is not None:
                reason = literal_problem(node.type, v)
                if reason:
                    self.problem(where, f"`{dotted}`: {reason}")
        if node.type is None and not node.children:
            self.problem(where, f"`{dotted}` is not an option")
            return False
        return node

    # -- finding modules in any file --------------------------------------------------------------------
    def scan(self, expr, file, scope, in_options=False):
        """Finds embedded modules: lambdas with module arguments, `modules`/`imports` lists, test nodes."""
        if not isinstance(expr, tuple):
            return
        k = expr[0]
        if k == "lambda" and not in_options:
            formals = set(expr[1]["formals"] or [])
            if "..." in formals and formals & MODULE_ARGS:
                self.module(expr, file, scope)
        if k == "attrs":
            for b in expr[1]:
                if b[0] != "bind":
                    continue
                head = b[1][0]
                name = head[1] if head[0] == "name" else None
                if name in ("modules", "imports"):
                    self.module_list(b[2], file, scope)
                if name == "nodes" and len(b[1]) == 2:
                    self.module(b[2], file, scope)
                if name == "nodes" and len(b[1]) == 1:
                    v, sc = self.unwrap(b[2], scope)
                    if v is not None and v[0] == "attrs":
                        for nb in v[1]:
                            if nb[0] == "bind":
                                self.module(nb[2], file, sc)
                self.scan(b[2], file, scope, in_options or name == "options")
            return
        if k == "let":
            sc = dict(scope)
            for b in expr[1]:
                if b[0] == "bind" and len(b[1]) == 1 and b[1][0][0] == "name":
                    sc[b[1][0][1]] = (b[2], sc)
            for b in expr[1]:
                if b[0] == "bind":
                    self.scan(b[2], file, sc, in_options)
            self.scan(expr[2], file, sc, in_options)
            return
        for part in expr[1:]:
            if isinstance(part, tuple):
                self.scan(part, file, scope, in_options)
            elif isinstance(part, list):
                for p in part:
                    if isinstance(p, tuple):
                        self.scan(p, file, scope, in_options)


def files(patterns):
    out = []
    for pat in patterns:
        for f in sorted(glob.glob(os.path.join(ROOT, pat))):
            if f not in out:
                out.append(f)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--options", default=os.environ.get("NIXOS_OPTIONS_JSON", DEFAULT_OPTIONS))
    ap.add_argument("--write-extra-options", metavar="FILE")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    if args.write_extra_options:
        with open(args.write_extra_options, "w", encoding="utf-8") as f:
            json.dump(NEWER_OPTIONS, f, indent=1)
            f.write("\n")

    if not os.path.exists(args.options):
        print(f"check-options: the option list {args.options} does not exist (set NIXOS_OPTIONS_JSON)", file=sys.stderr)
        return 2
    with open(args.options, encoding="utf-8") as f:
        entries = json.load(f)
    checker = Checker(option_tree(entries + NEWER_OPTIONS), args.verbose)

    module_files = set(files(MODULE_FILES)) - set(files(NOT_MODULES))
    for path in files(SCANNED_FILES):
        rel = os.path.relpath(path, ROOT)
        try:
            tree = parse(path)
        except NixSyntaxError as e:
            print(f"check-options: cannot parse {e}", file=sys.stderr)
            return 2
        if path in module_files:
            checker.module(tree, rel, {})
        checker.scan(tree, rel, {})

    if args.verbose:
        for o in sorted(checker.checked):
            print(f"  ok {o}")
    if checker.problems:
        for p in sorted(set(checker.problems)):
            print(f"check-options: {p}", file=sys.stderr)
        print(f"check-options: {len(set(checker.problems))} problem(s); an option newer than the list belongs in "
              "NEWER_OPTIONS of tests/check-options.py, with the reason", file=sys.stderr)
        return 1
    print(f"check-options: {len(checker.checked)} option paths set outside services.endoreg/endoreg exist "
          f"({len(entries)} options in {os.path.relpath(args.options, ROOT)}, {len(NEWER_OPTIONS)} newer allowed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
