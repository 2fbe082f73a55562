"""The dashboard's HTML, rendered on the server.

Every name that comes from a user or a client (collections, items, users,
nodes, places) goes through :func:`esc`; the script (``static/app.js``)
only ever sets ``textContent``, so a file named ``<script>`` shows as text.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import quote

__all__ = [
    "collection_page",
    "error_page",
    "esc",
    "login_page",
    "overview_page",
]


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def when(stamp: float | None) -> str:
    if not stamp:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover


def _page(title: str, user: str | None, body: str, script: bool = True) -> str:
    who = ""
    if user is not None:
        who = (
            f'<span class="who">{esc(user)}</span> '
            '<button type="button" id="logout">Log out</button>'
        )
    tail = '<script src="/ui/app.js"></script>' if script else ""
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        '<link rel="stylesheet" href="/ui/app.css"></head><body>'
        f'<header><a href="/" class="home">accord hub</a> {who}</header>'
        f"<main>{body}</main>{tail}</body></html>\n"
    )


_LOGIN_SCRIPT = """
document.getElementById('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target, error = document.getElementById('error');
  error.textContent = '';
  const answer = await fetch('/api/v1/session', {
    method: 'POST',
    headers: {'content-type': 'application/json', 'x-accord-csrf': '1'},
    body: JSON.stringify({user: form.user.value, password: form.password.value}),
  });
  if (answer.ok) { location.reload(); return; }
  const body = await answer.json().catch(() => ({}));
  error.textContent = (body.error && body.error.message) || 'the login failed';
});
"""


def login_page() -> str:
    body = (
        "<h1>Log in</h1>"
        '<form id="login" class="login">'
        '<label>User <input name="user" id="user" autocomplete="username" '
        "required></label>"
        '<label>Password <input name="password" id="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit" id="submit">Log in</button>'
        '<p id="error" class="error" role="alert"></p></form>'
        "<p class=hint>An admin sets your password: "
        "<code>accord hub user password NAME</code></p>"
        f"<script>{_LOGIN_SCRIPT}</script>"
    )
    return _page("accord hub: log in", None, body, script=False)


def _table(headers: list[str], rows: list[list[str]], empty: str, ident: str) -> str:
    if not rows:
        return f'<p class="empty" id="{ident}">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<table id="{ident}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _collection_link(name: str) -> str:
    return f'<a href="/collections/{esc(quote(name))}">{esc(name)}</a>'


def _collections(found: list[dict[str, Any]]) -> str:
    rows = [
        [_collection_link(c["name"]), esc(c["items"]), esc(size(c["bytes"]))]
        for c in found
    ]
    return _table(
        ["collection", "items", "size"], rows, "no collections", "collections"
    )


def _nodes(found: list[dict[str, Any]]) -> str:
    rows = [
        [
            esc(n["name"]),
            esc(n["user"]),
            esc(when(n["last_seen"])),
            esc("revoked " + when(n["revoked"]) if n["revoked"] else "active"),
        ]
        for n in found
    ]
    return _table(["node", "user", "last seen", "state"], rows, "no nodes", "nodes")


def _history(found: list[dict[str, Any]]) -> str:
    rows = [
        [
            esc(when(h["at"])),
            _collection_link(h["collection"]),
            esc(h["user"] or ""),
            esc(h["what"]),
        ]
        for h in found
    ]
    return _table(["when", "collection", "who", "what"], rows, "nothing yet", "history")


def _conflicts(found: list[dict[str, Any]]) -> str:
    rows = [
        [_collection_link(c["collection"]), esc(c["key"]), esc(size(c["size"]))]
        for c in found
    ]
    return _table(
        ["collection", "conflict copy", "size"], rows, "no open conflicts", "conflicts"
    )


def _db_conflicts(found: list[dict[str, Any]]) -> str:
    rows = [
        [
            esc(c["db"]),
            esc(c["tbl"]),
            esc(c["pk"]),
            esc(c["kind"]),
            esc(c.get("policy") or "-"),
            esc(c["resolution"]),
            esc(c["node"] or ""),
            esc(when(c["at"])),
        ]
        for c in found
    ]
    return _table(
        ["database", "table", "key", "kind", "policy", "resolution", "node", "when"],
        rows,
        "no SQL replication conflicts",
        "db-conflicts",
    )


def _running(locks: list[dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    items = [
        f'<li class="lock">{esc(r["collection"])}: {esc(r["who"])} on '
        f"{esc(r['host'])}, since {esc(when(r['since']))}</li>"
        for r in locks
    ]
    for run in runs:
        if run["state"] in ("planning", "running"):
            items.append(
                f'<li data-run="{esc(run["run"])}">{esc(run["label"])}: '
                f"{esc(run['done'])}/{esc(run['total'])}</li>"
            )
    return f'<ul id="running">{"".join(items)}</ul>'


def _options(sides: dict[str, Any], chosen: str | None) -> str:
    out = []
    for col in sides["collections"]:
        value = f"collection:{col['name']}"
        mark = " selected" if value == chosen else ""
        label = f"collection {col['name']}" + (
            "" if col["access"] == "write" else " (read only)"
        )
        out.append(f'<option value="{esc(value)}"{mark}>{esc(label)}</option>')
    for place in sides["places"]:
        value = f"place:{place['name']}"
        mark = " selected" if value == chosen else ""
        label = f"place {place['name']} ({place['kind']})"
        out.append(f'<option value="{esc(value)}"{mark}>{esc(label)}</option>')
    return "".join(out)


def sync_panel(sides: dict[str, Any], left: str | None = None) -> str:
    """Choose both sides, test them, list and select items, preview,
    start, and watch the progress bar and the log."""

    def side(name: str, chosen: str | None) -> str:
        return (
            f"<fieldset><legend>{name.title()}</legend>"
            f'<select id="{name}">{_options(sides, chosen)}</select> '
            f'<button type="button" id="test-{name}">Test</button> '
            f'<span id="{name}-status" class="status"></span></fieldset>'
        )

    right = next(
        (f"place:{p['name']}" for p in sides["places"] if f"place:{p['name']}" != left),
        None,
    )
    return (
        '<section id="sync"><h2>Sync two places</h2><div class="sides">'
        + side("left", left)
        + side("right", right)
        + '<label>Mode <select id="mode"><option value="sync">two-way sync</option>'
        '<option value="mirror">mirror left to right</option></select></label></div>'
        '<div class="row"><button type="button" id="list">List items</button> '
        '<input id="filter" placeholder="filter items" autocomplete="off"> '
        '<button type="button" id="select-shown">Select shown</button> '
        '<button type="button" id="select-none">Select none</button> '
        '<span id="item-count"></span></div>'
        '<table id="items" hidden><thead><tr><th></th><th>item</th><th>left</th>'
        "<th>right</th></tr></thead><tbody></tbody></table>"
        '<div class="row"><button type="button" id="preview">Preview</button> '
        '<button type="button" id="start">Start</button></div>'
        '<div id="plan"></div>'
        '<div class="row"><progress id="bar" value="0" max="1"></progress> '
        '<span id="progress-text"></span></div>'
        '<pre id="log"></pre></section>'
    )


def overview_page(data: dict[str, Any], sides: dict[str, Any], runs: list[Any]) -> str:
    body = (
        "<h1>Overview</h1>"
        f"<section><h2>Collections</h2>{_collections(data['collections'])}</section>"
        f"<section><h2>Running syncs</h2>{_running(data['running'], runs)}</section>"
        f"<section><h2>Open conflicts</h2>{_conflicts(data['conflicts'])}</section>"
        "<section><h2>SQL replication conflicts</h2>"
        f"{_db_conflicts(data.get('db_conflicts') or [])}</section>"
        f"<section><h2>Recent history</h2>{_history(data['history'])}</section>"
        f"<section><h2>Nodes</h2>{_nodes(data['nodes'])}</section>" + sync_panel(sides)
    )
    return _page("accord hub", data["user"], body)


def collection_page(
    user: str,
    name: str,
    info: dict[str, Any],
    listed: list[dict[str, Any]],
    found: dict[str, Any],
    sides: dict[str, Any],
) -> str:
    rows = [
        [
            esc(i["key"]),
            esc(i["kind"]),
            esc(size(i["size"]) if i["kind"] == "file" else ""),
            esc(when(i["mtime"]) if i["kind"] == "file" else ""),
        ]
        for i in listed
    ]
    body = (
        f'<h1>Collection <span id="name">{esc(name)}</span></h1>'
        f'<p id="summary">{esc(info["items"])} items, {esc(size(info["bytes"]))}; '
        f"your access: {esc(info['access'])}</p>"
        + _table(["item", "kind", "size", "modified"], rows, "empty", "content")
        + f"<section><h2>Open conflicts</h2>{_conflicts(found['conflicts'])}</section>"
        + f"<section><h2>History</h2>{_history(found['history'])}</section>"
        + sync_panel(sides, f"collection:{name}")
    )
    return _page(f"accord hub: {name}", user, body)


def error_page(message: str, user: str | None) -> str:
    body = f'<h1>Not here</h1><p class="error" id="error">{esc(message)}</p>'
    return _page("accord hub", user, body)
