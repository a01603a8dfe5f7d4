"""Print the docs' settings reference table (docs/settings.md) from ``preforkit.config.SETTINGS``.

python scripts/settings_table.py            # print the table
python scripts/settings_table.py --check    # exit 1 if docs/settings.md is stale
python scripts/settings_table.py --write    # rewrite it in docs/settings.md
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from preforkit.config import SETTINGS

README = pathlib.Path(__file__).resolve().parent.parent / "docs" / "settings.md"
BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def _default(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"`{value}`".replace("|", "\\|")


def table() -> str:
    rows = [
        "| option | environment / config key | default | meaning |",
        "|---|---|---|---|",
    ]
    for setting in SETTINGS:
        flags = " ".join(f"`{flag}`" for flag in setting.flags) or "(file/env only)"
        help_text = setting.help.replace("|", "\\|")
        rows.append(f"| {flags} | `{setting.env}` / `{setting.name}` | {_default(setting.default)} | {help_text} |")
    return "\n".join(rows)


def render(readme: str) -> str:
    start = readme.index(BEGIN) + len(BEGIN)
    end = readme.index(END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


def main() -> int:
    if "--check" in sys.argv:
        current = README.read_text(encoding="utf-8")
        if render(current) != current:
            print("docs/settings.md settings table is stale: run python scripts/settings_table.py --write")
            return 1
        return 0
    if "--write" in sys.argv:
        README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
