#!/usr/local/bin/python3
"""Entry point of the Tabadul image (installed as /usr/local/bin/tabadul-entrypoint).

    tabadul-entrypoint connector run   TEMPLATE   render TEMPLATE, then `tabadul connector run`
    tabadul-entrypoint connector check TEMPLATE   render TEMPLATE, then `tabadul connector check`
    tabadul-entrypoint render TEMPLATE OUTPUT     only render TEMPLATE into OUTPUT (0600)
    tabadul-entrypoint COMMAND ARGS...            anything else runs as given (tabadul api serve...)

A connector's TOML file cannot read the environment, yet its broker and database URLs carry
passwords. So the configuration files of the containers (scripts/docker/connectors/*.toml) are
templates: every ``${NAME}`` in them is replaced by the environment variable NAME,
percent-encoded (they stand for passwords inside URLs, where ``@``, ``/`` or ``:`` would break
the URL), and ``$$`` by ``$``. A variable that is unset or empty stops the container with a
message naming it. The rendered file is written with mode 0600 under $TABADUL_RUNTIME_DIR
(default /tmp/tabadul, a tmpfs in docker-compose.yml), never into the image or a volume.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

# $$, or ${NAME}, or anything else that starts like a placeholder (reported as malformed)
_PLACEHOLDER = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|(\{[^}\n]*\}?))")


def render(text: str, env: dict[str, str], where: str) -> str:
    """``text`` with each ``${NAME}`` replaced by the percent-encoded value of NAME."""
    missing: list[str] = []
    malformed: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        dollar, name, bad = match.groups()
        if dollar:
            return "$"
        if bad:
            malformed.append(match.group())
            return ""
        value = env.get(name, "")
        if not value:
            missing.append(name)
            return ""
        return quote(value, safe="")

    rendered = _PLACEHOLDER.sub(substitute, text)
    if malformed:
        raise SystemExit(f"tabadul-entrypoint: {where}: malformed placeholder {malformed[0]!r}")
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise SystemExit(f"tabadul-entrypoint: {where} needs {names}; set it in the environment")
    return rendered


def render_file(template: Path, output: Path | None = None) -> Path:
    """Render ``template`` into ``output`` (default: a file of the same name in the runtime
    folder), mode 0600; return where it went."""
    try:
        text = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"tabadul-entrypoint: cannot read {template}: {exc.strerror}") from exc
    rendered = render(text, dict(os.environ), str(template))
    if output is None:
        folder = Path(os.environ.get("TABADUL_RUNTIME_DIR", "/tmp/tabadul"))  # noqa: S108
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        output = folder / template.name
    handle, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as file:  # mkstemp makes it 0600
        file.write(rendered)
    Path(name).replace(output)
    return output


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    if argv[0] == "connector" and len(argv) >= 3 and argv[1] in ("run", "check"):
        config = render_file(Path(argv[2]))
        command = ["tabadul", "connector", argv[1], "--config", str(config), *argv[3:]]
    elif argv[0] == "render" and len(argv) == 3:
        render_file(Path(argv[1]), Path(argv[2]))
        return
    else:
        command = argv
    try:
        os.execvp(command[0], command)  # noqa: S606 - the container's command, by design
    except OSError as exc:
        raise SystemExit(f"tabadul-entrypoint: cannot run {command[0]}: {exc.strerror}") from exc


if __name__ == "__main__":
    main(sys.argv[1:])
