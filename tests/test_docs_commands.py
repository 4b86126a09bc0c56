"""Every ``snakemake`` and ``spbench`` command shown in the docs parses as the tool reads it.

A target after ``--resources gpu=2`` (which takes every word after it) made the README's
per-artefact commands fail when copied; the tools' own parsers catch that class of mistake.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS += sorted((ROOT / "results").glob("*/README.md"))


def shown_commands(tool: str) -> list[tuple[str, str]]:
    """Return ``(where, command)`` for each ``tool`` command in the docs' code blocks.

    Continuation lines are joined and ``&&`` chains split; placeholders (``<folder>``) become
    one word; commands with an elided part (``...``) are left out.
    """
    found = []
    for doc in DOCS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        in_block, i = False, 0
        while i < len(lines):
            line = lines[i].strip()
            if line.startswith("```"):
                in_block = not in_block
            elif in_block:
                start, text = i + 1, line
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1] + " " + lines[i].strip()
                text = re.sub(r"<[^>]*>", "PLACEHOLDER", text)
                for part in text.split("&&"):  # "pip install -e . && snakemake ..."
                    part = part.strip()
                    if part.startswith(f"{tool} ") and "..." not in part:
                        found.append((f"{doc.relative_to(ROOT)}:{start}", part))
            i += 1
    return found


def _words(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    return words[1:]


@pytest.mark.parametrize(("where", "command"), shown_commands("snakemake"))
def test_snakemake_commands_in_the_docs_parse(where: str, command: str) -> None:
    from snakemake.cli import get_argument_parser

    args = get_argument_parser().parse_args(_words(command))
    for target in args.targets or []:
        assert "=" not in target, f"{where}: {target!r} read as a target"


@pytest.mark.parametrize(("where", "command"), shown_commands("spbench"))
def test_spbench_commands_in_the_docs_parse(where: str, command: str) -> None:
    from spbench.cli import build_parser

    try:
        build_parser().parse_args(_words(command))
    except SystemExit as err:
        pytest.fail(f"{where}: {command!r} does not parse (exit {err.code})")


def test_the_docs_show_commands() -> None:
    """The extraction itself works (else the tests above would pass on nothing)."""
    snakemake = [command for _, command in shown_commands("snakemake")]
    assert any(" table2 " in f"{c} " for c in snakemake)
    assert len(shown_commands("spbench")) >= 3
