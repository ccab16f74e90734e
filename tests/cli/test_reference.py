"""docs/reference.md names every command and every option that `batcher CMD --help` prints.

Commands are found in `batcher --help` itself, so a command someone adds later is held to this too. The help is
read as printed (what the `batcher` script's main() writes), not from the parser's internals.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from batcher.cli import main as cli
from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "reference.md"
_CHOICES = re.compile(r"\{([a-z][a-z0-9_,-]*)\}")
_OPTION_LINE = re.compile(r"^ {1,4}(-[^ ].*?)(?: {2,}|$)")
_OPTION = re.compile(r"^--?[A-Za-z][\w-]*")


def help_text(*words: str) -> str:
    """What `batcher [CMD] --help` prints, through the console script's own function."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([*words, "--help"], environ={})
    assert code == 0, f"batcher {' '.join(words)} --help exited {code}"
    return out.getvalue()


def commands_in(top_help: str) -> list[str]:
    """The commands `batcher --help` lists: argparse's `{run,plan,...}`, or the lines under a `Commands:` heading."""
    found = _CHOICES.search(top_help)
    if found:
        return found.group(1).split(",")
    section = top_help.split("Commands:", 1)[1] if "Commands:" in top_help else ""
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def options_in(command_help: str) -> list[str]:
    """Every option string of the help's option lines (`  --a, --no-a`, `  -v, --verbose`), `-h/--help` aside."""
    options: list[str] = []
    for line in command_help.splitlines():
        head = _OPTION_LINE.match(line)
        if not head:
            continue
        for part in head.group(1).split(", "):
            name = _OPTION.match(part.strip())
            if name and name.group(0) not in ("-h", "--help") and name.group(0) not in options:
                options.append(name.group(0))
    return options


def sections_of(reference: str, command: str) -> str:
    """The text of every `##` section whose heading names `batcher COMMAND` (in backticks)."""
    parts = re.split(r"^(?=## )", reference, flags=re.MULTILINE)
    return "".join(part for part in parts if f"`batcher {command}`" in part.split("\n", 1)[0])


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """Each command's `--help`, by command."""
    return {command: help_text(command) for command in commands_in(help_text())}


def test_the_help_lists_the_known_commands_and_options(helps: dict[str, str]) -> None:
    """The parsing finds what is there: guards the test below against reading nothing and passing."""
    assert {"run", "plan", "undo", "report", "verify", "export", "sandbox"} <= set(helps)
    run = options_in(helps["run"])
    assert {"--status", "--status-column", "--no-snapshot", "-y", "--no-yes", "-v", "--verbose"} <= set(run)
    assert "--help" not in run and len(run) > 50
    assert options_in(helps["sandbox"])[:2] == ["--host", "--port"]


def test_options_in_reads_option_lines_only() -> None:
    text = "\n".join(
        ["options:", "  -h, --help  show", "  --a A    an a, see", " " * 9 + "--not-this", "  -q, --quiet, --no-quiet"]
    )
    assert options_in(text) == ["--a", "-q", "--quiet", "--no-quiet"]


def test_a_missing_option_or_command_is_found() -> None:
    reference = (
        "## `batcher run` and `batcher plan`\n\n| `--status S` | ... |\n| `--status-column` |\n## `batcher x`\n`--y`"
    )
    assert sections_of(reference, "plan").count("--status") == 2
    assert sections_of(reference, "report") == ""
    assert "--y" not in sections_of(reference, "run")
    assert missing_from(reference, "run", ["--status", "--status-column", "--no-status"]) == ["--no-status"]


def missing_from(reference: str, command: str, options: list[str]) -> list[str]:
    section = sections_of(reference, command)
    return [option for option in options if not re.search(rf"`{re.escape(option)}(?![\w-])", section)]


def test_every_command_and_option_is_in_the_reference(helps: dict[str, str]) -> None:
    reference = REFERENCE.read_text(encoding="utf-8")
    no_section = [command for command in helps if not sections_of(reference, command)]
    assert no_section == [], "docs/reference.md needs a '## `batcher CMD`' section for each of these"
    missing = {command: missing_from(reference, command, options_in(text)) for command, text in helps.items()}
    assert {command: names for command, names in missing.items() if names} == {}


def test_the_readme_stays_short_and_its_links_and_cron_line_hold() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    pages = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]
    assert broken == []
    nightly = (ROOT / "docs" / "nightly.md").read_text(encoding="utf-8")
    cron = [line for line in readme.splitlines() if line.startswith("    30 2 * * * ")]
    assert len(cron) == 1 and cron[0] in nightly.splitlines()
