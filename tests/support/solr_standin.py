"""A Solr-protocol STAND-IN for CKAN.  THIS IS NOT SOLR.

It exists only so that the tests and the local demo can run the real CKAN 2.11 on a machine
where no Solr package is available.  It is not for production and not for benchmarks:
docker-compose.yml runs real Solr.  It speaks just enough of Solr's HTTP protocol for what
CKAN calls through pysolr:

* ``GET <core>/schema?wt=schema.xml`` - a schema named ``ckan-2.11`` (CKAN checks the name);
* ``GET|POST <core>/select`` - q, fq, fl, sort, start, rows, facet.field, facet.limit,
  facet.mincount, defType, qf, mm; ``wt=json`` answers only;
* ``POST <core>/update`` - a JSON list of documents, XML ``<add>``, ``<delete><query>`` /
  ``<delete><id>`` and ``<commit/>``, ``commit=true``.

The index is a dictionary in memory (optionally saved to a JSON file on every change), and
query matching is naive: a small Lucene-syntax parser (``+``/``-``, AND/OR/NOT, parentheses,
``field:value``, ``field:"phrase"``, ``field:(a OR b)``, ``field:[a TO b]``, ``*`` wildcards)
with whole-token matching; free text (dismax) matches tokens in the ``text`` bag built from the
usual CKAN fields.  Tokens are analysed roughly as Solr's language field types would: case and
accents folded (``Région`` is ``region``), Arabic diacritics, tatweel and letter variants
normalised, then stemmed by the Snowball stemmers of French, English and Arabic
(``snowballstemmer``): two tokens match when any of their stems agree, so ``mariage`` finds
"Mariages".  There is no relevance ranking beyond counting matched terms.

Run it in a thread with :func:`serve`, or as a process::

    python tests/support/solr_standin.py --port 8985 [--data var/ckan/solr-standin.json]

and point CKAN at ``http://127.0.0.1:8985/solr/ckan``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import threading
import time
import unicodedata
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import snowballstemmer

SCHEMA_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- NOT Solr: tests/support/solr_standin.py, for tests and the local demo only -->
<schema name="ckan-2.11" version="1.6">
  <uniqueKey>index_id</uniqueKey>
</schema>
"""

# Fields whose words go into the free-text bag (Solr's copyField to ``text`` in CKAN's schema).
TEXT_FIELDS = (
    "name",
    "title",
    "text",
    "notes",
    "tags",
    "groups",
    "organization",
    "res_name",
    "res_description",
    "res_url",
    "author",
    "maintainer",
    "license",
    "url",
    "ckan_url",
    "download_url",
    "urls",
)

# Fields matched word by word (Solr "text" types); every other field is an exact string.
TOKENIZED_FIELDS = frozenset(
    (
        "text",
        "title",
        "notes",
        "res_name",
        "res_description",
        "author",
        "maintainer",
        "title_ngram",
    )
)

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STEMMERS = tuple(snowballstemmer.stemmer(language) for language in ("french", "english", "arabic"))
# Arabic letters searched as their plain forms (alef with hamza or madda, alef maqsura,
# teh marbuta), as Solr's ArabicNormalizationFilter does; tatweel is dropped.
_ALEF, _YEH, _HEH = "\u0627", "\u064a", "\u0647"
_ARABIC = str.maketrans(
    {"\u0623": _ALEF, "\u0625": _ALEF, "\u0622": _ALEF, "\u0649": _YEH, "\u0629": _HEH,
     "\u0640": None}
)  # fmt: skip


def _fold(word: str) -> str:
    """Lower case, no accents or Arabic diacritics, plain Arabic letter forms."""
    decomposed = unicodedata.normalize("NFKD", word.casefold().translate(_ARABIC))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(value: Any) -> list[str]:
    """The folded tokens of ``value`` (for wildcards and phrases)."""
    if isinstance(value, list):
        return [w for v in value for w in _words(v)]
    if value is None:
        return []
    return [_fold(w) for w in _TOKEN.findall(str(value))]


def _stems(word: str) -> frozenset[str]:
    """Every stem of a folded token: French, English and Arabic (a token of another script is
    left as it is by the stemmers that do not know it)."""
    return frozenset({word, *(s.stemWord(word) for s in _STEMMERS)})


def _terms(value: Any) -> list[frozenset[str]]:
    return [_stems(w) for w in _words(value)]


def _values(doc: dict[str, Any], field: str) -> list[Any]:
    if field == "text":
        bag: list[Any] = []
        for name, value in doc.items():
            if name in TEXT_FIELDS or name.startswith("extras_"):
                bag.extend(value if isinstance(value, list) else [value])
        return bag
    value = doc.get(field)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------
# Query parsing: a tiny subset of the Lucene standard query syntax.

_LEX = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<op>AND\b|OR\b|NOT\b|&&|\|\|) |
        (?P<sign>[+\-!])(?=\S) |
        (?P<range>(?P<rfield>[\w.*]+):[\[{](?P<lo>\S+)\s+TO\s+(?P<hi>[^\]}]+)[\]}]) |
        (?P<fieldgroup>(?P<gfield>[\w.*]+):\() |
        (?P<term>(?:(?P<field>[\w.*]+):)?(?:"(?P<phrase>(?:[^"\\]|\\.)*)"|(?P<word>(?:[^\s()"\\]|\\.)+)))
    )""",
    re.VERBOSE,
)

Node = tuple[Any, ...]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _tokens(query: str) -> list[tuple[str, Any]]:
    query = re.sub(r"^\s*\{![^}]*\}", "", query)  # local params such as {!dismax ...}
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _LEX.match(query, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse query near {query[pos : pos + 30]!r}")
        pos = m.end()
        if m["lparen"]:
            out.append(("(", None))
        elif m["rparen"]:
            out.append((")", None))
        elif m["op"]:
            out.append(("op", {"&&": "AND", "||": "OR"}.get(m["op"], m["op"])))
        elif m["sign"]:
            out.append(("sign", "-" if m["sign"] == "!" else m["sign"]))
        elif m["range"]:
            out.append(("range", (m["rfield"], _unescape(m["lo"]), _unescape(m["hi"].strip()))))
        elif m["fieldgroup"]:
            out.append(("fieldgroup", m["gfield"]))
        else:
            phrase = m["phrase"] is not None
            value = _unescape(m["phrase"] if phrase else m["word"])
            out.append(("term", (m["field"], value, phrase)))
    return out


class _Parser:
    def __init__(
        self, tokens: list[tuple[str, Any]], default_field: str | None, default_occur: str
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.default_field = default_field
        # q.op: a clause without AND, OR or a sign is "should" (OR) or "must" (AND)
        self.default_occur = default_occur

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def boolean(self, field: str | None) -> Node:
        """A list of clauses until ')' or the end: ('bool', [(occur, node), ...])."""
        clauses: list[list[Any]] = []
        pending_and = pending_or = False
        while (token := self.peek()) is not None and token[0] != ")":
            occur = self.default_occur
            if token == ("op", "AND"):
                self.take()
                pending_and = True
                continue
            if token == ("op", "OR"):
                self.take()
                pending_or = True
                continue
            if token == ("op", "NOT"):
                self.take()
                occur = "not"
            elif token[0] == "sign":
                self.take()
                occur = "must" if token[1] == "+" else "not"
            node = self.atom(field)
            if pending_and:
                occur = "must" if occur == "should" else occur
                if clauses and clauses[-1][0] == "should":
                    clauses[-1][0] = "must"
                pending_and = False
            if pending_or:  # a OR b: both optional, whatever q.op says
                occur = "should" if occur == "must" else occur
                if clauses and clauses[-1][0] == "must":
                    clauses[-1][0] = "should"
                pending_or = False
            clauses.append([occur, node])
        return ("bool", [tuple(c) for c in clauses])

    def atom(self, field: str | None) -> Node:
        kind, value = self.take()
        if kind == "(":
            node = self.boolean(field)
            if self.peek() is not None:
                self.take()
            return node
        if kind == "fieldgroup":
            node = self.boolean(value)
            if self.peek() is not None:
                self.take()
            return node
        if kind == "range":
            return ("range", *value)
        if kind == "term":
            own_field, text, phrase = value
            return ("term", own_field or field or self.default_field, text, phrase)
        raise ValueError(f"unexpected {kind} {value!r} in query")


def parse(query: str, default_field: str | None = "text", *, q_op: str = "OR") -> Node:
    """Parse ``query``; with ``q_op`` AND, bare clauses are required (Solr's q.op)."""
    parser = _Parser(_tokens(query), default_field, "must" if q_op == "AND" else "should")
    node = parser.boolean(None)
    if parser.peek() is not None:
        raise ValueError("unbalanced parentheses in query")
    return node


def _term_matches(doc: dict[str, Any], field: str | None, text: str, phrase: bool) -> bool:
    if field in (None, "*") and text == "*":
        return True
    fields = (
        [field]
        if field and "*" not in field
        else [name for name in doc if fnmatch.fnmatchcase(name, field or "*")]
    )
    for name in fields:
        values = _values(doc, name)
        if text == "*":
            if values:
                return True
            continue
        wanted = _fold(text)
        for value in values:
            literal = _fold(str(value))
            if "*" in wanted or "?" in wanted:
                if fnmatch.fnmatchcase(literal, wanted) or any(
                    fnmatch.fnmatchcase(w, wanted) for w in _words(value)
                ):
                    return True
            elif literal == wanted:
                return True
            elif name in TOKENIZED_FIELDS or name.startswith("extras_"):
                terms, want = _terms(value), _terms(wanted)
                if want and (
                    all(any(w & t for t in terms) for w in want)
                    if not phrase
                    else _contains_run(terms, want)
                ):
                    return True
    return False


def _contains_run(terms: list[frozenset[str]], run: list[frozenset[str]]) -> bool:
    """Whether ``run`` appears in ``terms`` as consecutive tokens (stems agreeing)."""
    return any(
        all(a & b for a, b in zip(terms[i : i + len(run)], run, strict=True))
        for i in range(len(terms) - len(run) + 1)
    )


def _range_matches(doc: dict[str, Any], field: str, low: str, high: str) -> bool:
    def key(v: str) -> Any:
        try:
            return (0, float(v))
        except ValueError:
            return (1, v)

    for value in _values(doc, field):
        v = key(str(value))
        if (low in ("*", "NOW") or key(low) <= v) and (
            high.startswith(("*", "NOW")) or v <= key(high)
        ):
            return True
    return False


def matches(node: Node, doc: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "term":
        return _term_matches(doc, node[1], node[2], node[3])
    if kind == "range":
        return _range_matches(doc, node[1], node[2], node[3])
    clauses = node[1]
    if not clauses:
        return True
    must = [n for occur, n in clauses if occur == "must"]
    should = [n for occur, n in clauses if occur == "should"]
    not_ = [n for occur, n in clauses if occur == "not"]
    if any(matches(n, doc) for n in not_) or not all(matches(n, doc) for n in must):
        return False
    return bool(must) or not should or any(matches(n, doc) for n in should)


def _min_should_match(mm: str | None, n: int) -> int:
    """Solr's ``mm`` spec, e.g. ``2<-1 5<80%``; no spec means every term."""
    if not mm:
        return n

    def amount(spec: str) -> int:
        if spec.endswith("%"):
            pct = int(spec[:-1])
            return n - math.floor(n * -pct / 100) if pct < 0 else math.floor(n * pct / 100)
        value = int(spec)
        return n + value if value < 0 else value

    parts = mm.split()
    if len(parts) == 1 and "<" not in parts[0]:
        return max(0, min(n, amount(parts[0])))
    needed = n
    for part in parts:
        limit, _, spec = part.partition("<")
        if n > int(limit):
            needed = amount(spec)
    return max(1, min(n, needed))


# ---------------------------------------------------------------------------------------------
# The index.


class Index:
    """Documents by unique key (``index_id``, else ``id``); thread-safe; optional JSON file."""

    def __init__(self, data_file: Path | None = None) -> None:
        self.lock = threading.Lock()
        self.docs: dict[str, dict[str, Any]] = {}
        self.data_file = data_file
        if data_file is not None and data_file.exists():
            self.docs = json.loads(data_file.read_text("utf-8"))

    def _save(self) -> None:
        if self.data_file is not None:
            tmp = self.data_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.docs), "utf-8")
            tmp.replace(self.data_file)

    def add(self, docs: list[dict[str, Any]]) -> None:
        with self.lock:
            for doc in docs:
                key = str(doc.get("index_id") or doc.get("id"))
                self.docs[key] = doc
            self._save()

    def delete(self, ids: list[str], queries: list[str]) -> None:
        with self.lock:
            for key in ids:
                self.docs.pop(key, None)
                for k, doc in list(self.docs.items()):
                    if str(doc.get("id")) == key:
                        del self.docs[k]
            for query in queries:
                node = parse(query)
                for k, doc in list(self.docs.items()):
                    if matches(node, doc):
                        del self.docs[k]
            self._save()

    def select(self, params: dict[str, list[str]]) -> dict[str, Any]:
        one = {k: v[-1] for k, v in params.items()}
        q = one.get("q", "*:*").strip() or "*:*"
        def_type = one.get("defType", "lucene")
        q_op = one.get("q.op", "OR")
        with self.lock:
            docs = list(self.docs.values())
        for fq in params.get("fq", []):
            if fq.strip():
                node = parse(fq, q_op=q_op)
                docs = [d for d in docs if matches(node, d)]
        scored: list[tuple[float, dict[str, Any]]] = []
        if def_type in ("dismax", "edismax") and q != "*:*" and ":" not in q:
            fields = [f.split("^")[0] for f in one.get("qf", "text").split()] or ["text"]
            terms = _words(q)
            needed = _min_should_match(one.get("mm"), len(terms))
            for doc in docs:
                hit = sum(
                    1 for t in terms if any(_term_matches(doc, f, t, phrase=False) for f in fields)
                )
                if hit >= needed:
                    scored.append((float(hit), doc))
        else:
            node = parse(q, default_field=one.get("df", "text"), q_op=q_op)
            scored = [(1.0, d) for d in docs if matches(node, d)]
        scored = _sorted(scored, one.get("sort", "score desc"))
        start, rows = int(one.get("start", 0)), int(one.get("rows", 10))
        page = scored[start : start + rows]
        fl = [f for f in re.split(r"[\s,]+", one.get("fl", "*")) if f]
        out_docs = [_project(doc, score, fl) for score, doc in page]
        body: dict[str, Any] = {
            "responseHeader": {"status": 0, "QTime": 0, "params": one},
            "response": {
                "numFound": len(scored),
                "start": start,
                "maxScore": 1.0,
                "docs": out_docs,
            },
        }
        if one.get("facet", "false") == "true":
            body["facet_counts"] = _facets(params, [d for _, d in scored])
        return body


def _sorted(
    scored: list[tuple[float, dict[str, Any]]], sort: str
) -> list[tuple[float, dict[str, Any]]]:
    result = list(scored)
    for clause in reversed([c.strip() for c in sort.split(",") if c.strip()]):
        field, _, direction = clause.partition(" ")
        reverse = direction.strip().lower() == "desc"

        def key(item: tuple[float, dict[str, Any]], field: str = field) -> tuple[int, Any]:
            value = item[0] if field == "score" else item[1].get(field)
            if isinstance(value, list):
                value = value[0] if value else None
            if value is None:
                return (0, "")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return (1, value)
            return (2, str(value).lower())

        result.sort(key=key, reverse=reverse)
    return result


def _project(doc: dict[str, Any], score: float, fl: list[str]) -> dict[str, Any]:
    out = dict(doc) if not fl or "*" in fl else {f: doc[f] for f in fl if f in doc}
    if "score" in fl:
        out["score"] = score
    return out


def _facets(params: dict[str, list[str]], docs: list[dict[str, Any]]) -> dict[str, Any]:
    one = {k: v[-1] for k, v in params.items()}
    limit = int(one.get("facet.limit", 100))
    mincount = int(one.get("facet.mincount", 0))
    fields: dict[str, list[Any]] = {}
    for field in params.get("facet.field", []):
        counts: dict[str, int] = {}
        for doc in docs:
            for value in set(map(str, _values(doc, field))):
                counts[value] = counts.get(value, 0) + 1
        items = sorted(
            ((v, c) for v, c in counts.items() if c >= mincount), key=lambda vc: (-vc[1], vc[0])
        )
        if limit >= 0:
            items = items[:limit]
        fields[field] = [x for vc in items for x in vc]
    return {
        "facet_queries": {},
        "facet_fields": fields,
        "facet_ranges": {},
        "facet_intervals": {},
        "facet_heatmaps": {},
    }


# ---------------------------------------------------------------------------------------------
# HTTP.


class _Handler(BaseHTTPRequestHandler):
    server_version = "NotSolr-standin/0.1"
    index: Index

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(
            status,
            {
                "responseHeader": {"status": status, "QTime": 0},
                "error": {"msg": message, "code": status},
            },
        )

    def _dispatch(self, body: bytes) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        ctype = self.headers.get("Content-Type", "")
        if body and "x-www-form-urlencoded" in ctype:
            for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
            body = b""
        action = url.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            if action == "schema" or url.path.rstrip("/").endswith("admin/file"):
                self._send(200, SCHEMA_XML.encode(), "application/xml; charset=utf-8")
            elif action == "ping":
                self._json(200, {"status": "OK", "responseHeader": {"status": 0, "QTime": 0}})
            elif action == "select":
                self._json(200, self.index.select(params))
            elif action == "update":
                self._update(body, ctype)
                self._json(200, {"responseHeader": {"status": 0, "QTime": 0}})
            else:
                self._error(404, f"not-Solr stand-in: no handler for {url.path}")
        except ValueError as exc:  # bad query syntax, like Solr's 400
            self._error(400, f"org.apache.solr.search.SyntaxError: {exc}")

    def _update(self, body: bytes, ctype: str) -> None:
        text = body.decode("utf-8").strip()
        if not text:
            return
        if "json" in ctype or text[0] in "[{":
            payload = json.loads(text)
            if isinstance(payload, dict):  # command form: {"add": {"doc": ..}, "delete": ..}
                docs = [payload["add"]["doc"]] if "add" in payload else []
                delete = payload.get("delete", {})
                ids = [delete["id"]] if "id" in delete else []
                queries = [delete["query"]] if "query" in delete else []
                self.index.add(docs)
                self.index.delete(ids, queries)
            else:
                self.index.add(payload)
            return
        root = ET.fromstring(text)  # noqa: S314 - test-only server on 127.0.0.1, fed by CKAN
        elements = [root] if root.tag in ("add", "delete", "commit", "optimize") else list(root)
        for element in elements:
            if element.tag == "add":
                docs = []
                for doc in element.findall("doc"):
                    fields: dict[str, Any] = {}
                    for field in doc.findall("field"):
                        name = field.get("name", "")
                        if name in fields:
                            old = fields[name]
                            fields[name] = (
                                [*old, field.text] if isinstance(old, list) else [old, field.text]
                            )
                        else:
                            fields[name] = field.text
                    docs.append(fields)
                self.index.add(docs)
            elif element.tag == "delete":
                self.index.delete(
                    [e.text or "" for e in element.findall("id")],
                    [e.text or "" for e in element.findall("query")],
                )

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length) if length else b"")


def make_server(
    host: str = "127.0.0.1", port: int = 0, data_file: Path | None = None
) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"index": Index(data_file)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(
    host: str = "127.0.0.1", port: int = 0, data_file: Path | None = None
) -> tuple[ThreadingHTTPServer, str]:
    """Start in a daemon thread; returns the server (``.shutdown()`` it) and the core URL."""
    server = make_server(host, port, data_file)
    threading.Thread(target=server.serve_forever, daemon=True, name="solr-standin").start()
    return server, f"http://{host}:{server.server_address[1]}/solr/ckan"


def main() -> None:
    parser = argparse.ArgumentParser(
        description="NOT Solr: a Solr-protocol stand-in for CKAN tests"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8985)
    parser.add_argument("--data", type=Path, help="JSON file that keeps the index across restarts")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.data)
    print(  # noqa: T201 - the one line a background process leaves in its log
        f"not-Solr stand-in on http://{args.host}:{args.port}/solr/ckan "
        f"(started {time.strftime('%H:%M:%S')})",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
