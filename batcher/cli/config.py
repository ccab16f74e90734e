"""Where each `run` option's value comes from: flag, then environment, then config file, then default.

Options are named once, by the argument parser; this module reads the options it keeps (option_parser.py), so a new
option is settable from a config file (TOML) and from `BATCHER_<OPTION>` with no further code.
"""

from __future__ import annotations

import argparse
import math
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batcher.cli.option_parser import OptionParser
from batcher.errors import UsageError
from batcher.settings import ENV_BASE_URL, ENV_DEVICE_URL, ENV_TOKEN_URL, without_credentials

ENV_PREFIX = "BATCHER_"
# the rule: CTCT_* for credentials and the base URL, BATCHER_* for the other options
ENV_NAMES = {
    "base_url": ENV_BASE_URL,
    "token_url": ENV_TOKEN_URL,
    "client_id": "CTCT_CLIENT_ID",
    "device_url": ENV_DEVICE_URL,
}
NOT_CONFIGURABLE = frozenset({"config", "print_config", "help"})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One long option of a subcommand, as the parser defines it."""

    dest: str
    flag: str  # e.g. --batch-size
    is_switch: bool  # takes no value: store_true or --x/--no-x
    convert: Callable[[str], object] | None
    is_list: bool = False  # repeatable: a TOML list, or ";"-separated in the environment

    @property
    def env_name(self) -> str:
        return ENV_NAMES.get(self.dest, ENV_PREFIX + self.dest.upper())


@dataclass(frozen=True, slots=True)
class Resolved:
    """Option values with, for each, where it came from."""

    values: dict[str, object]
    sources: dict[str, str]  # dest -> "flag", "env NAME", "config FILE" or "default"
    keys: dict[str, str] = field(default_factory=dict)  # dest -> the key the config file sets it with

    def origin(self, dest: str) -> str:
        """Where a value that is not a flag's came from, in the words of an error: the config file and its key, or
        the environment variable; "" for a flag or a default."""
        source = self.sources.get(dest, "")
        if source.startswith("config ") and dest in self.keys:
            return f"{source.removeprefix('config ')}: {self.keys[dest]}"
        if source.startswith("env "):
            return f"environment variable {source.removeprefix('env ').split()[0]}"
        return ""


def option_specs(parser: OptionParser) -> dict[str, OptionSpec]:
    """The specs of the parser's long options, as it keeps them."""
    specs: dict[str, OptionSpec] = {}
    for defined in parser.defined:
        action, longs = defined.action, defined.long_flags
        if not longs or action.dest in NOT_CONFIGURABLE or action.dest in specs:
            continue  # a second flag of one dest (--progress beside --no-progress) is its opposite
        specs[action.dest] = OptionSpec(
            dest=action.dest,
            flag=longs[0],
            is_switch=action.nargs == 0,
            convert=action.type if callable(action.type) else None,
            is_list=defined.is_list,
        )
    return specs


def resolve(
    given: Mapping[str, object],
    specs: Mapping[str, OptionSpec],
    defaults: Mapping[str, object],
    environ: Mapping[str, str],
    config_path: Path | None,
    *,
    also_known: Collection[str] = (),
) -> Resolved:
    """Each option's value by precedence: flag, environment, config file, default.

    also_known names the options of other commands, which a shared config file may set and this one ignores.

    Raises:
        UsageError: the config file or an environment value is unreadable or names an unknown option.
    """
    values = dict(defaults)
    sources = dict.fromkeys(defaults, "default")
    keys: dict[str, str] = {}
    if config_path is not None:
        for dest, value in read_config(config_path, specs, also_known=also_known, keys=keys).items():
            values[dest] = value
            sources[dest] = f"config {config_path}"
    for dest, spec in specs.items():
        text = environ.get(spec.env_name)
        if text is not None and text != "":
            where = f"environment variable {spec.env_name}"
            if spec.is_list:
                values[dest] = [_from_text(spec, part, where) for part in text.split(";") if part.strip()]
            else:
                values[dest] = _from_text(spec, text, where)
            sources[dest] = f"env {spec.env_name}"
    for dest, value in given.items():
        if dest in specs:
            values[dest] = value
            sources[dest] = "flag"
    return Resolved(values, sources, keys)


def read_config(
    path: Path,
    specs: Mapping[str, OptionSpec],
    *,
    also_known: Collection[str] = (),
    keys: dict[str, str] | None = None,
) -> dict[str, object]:
    """The options a TOML config file sets, converted like their flags; keys, when given, gets each one's key.

    Raises:
        UsageError: the file cannot be read, is not TOML, or names an unknown option.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    values: dict[str, object] = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        spec = specs.get(dest)
        if spec is None and dest in also_known:
            continue  # another command's option (client-id is login's)
        if spec is None:
            known = ", ".join(sorted(name.replace("_", "-") for name in specs))
            raise UsageError(f"{path}: unknown option {key!r}; a config file may set: {known}")
        where = f"{path}: {key}"
        if keys is not None:
            keys[dest] = key
        if spec.is_switch:
            if not isinstance(value, bool):
                raise UsageError(f"{where} must be true or false (got {value!r})")
            values[dest] = value
        elif spec.is_list:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise UsageError(f'{where} must be a list of strings, like ["event_id=Event"] (got {value!r})')
            values[dest] = [_from_text(spec, item, where) for item in value]
        elif isinstance(value, bool | dict | list):
            raise UsageError(f"{where} must be a single value like its flag {spec.flag} takes (got {value!r})")
        else:
            values[dest] = _from_text(spec, str(value), where)
    return values


def finite_number(text: str) -> float:
    """An option's number: inf, nan and numbers too large for a float are refused (they would break every wait)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _from_text(spec: OptionSpec, text: str, where: str) -> object:
    if spec.is_switch:
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise UsageError(f"{where} must be true or false (got {text!r})")
    if spec.convert is None:
        return text
    try:
        return spec.convert(text)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise UsageError(f"{where}: {exc or 'not a valid value'} (got {text!r}, as for {spec.flag})") from None


FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def with_origin(exc: UsageError, resolved: Resolved, specs: Mapping[str, OptionSpec]) -> UsageError:
    """A value refused after resolving (out of range, say), named by where it came from when that is not a flag:
    the config file and key, or the environment variable. The option is the first flag the message names."""
    found = FLAG.search(str(exc))
    by_flag = {spec.flag: dest for dest, spec in specs.items()}
    origin = resolved.origin(by_flag[found.group()]) if found and found.group() in by_flag else ""
    return UsageError(f"{exc} (set by {origin})") if origin else exc


def describe(
    resolved: Resolved,
    environ: Mapping[str, str],
    secret_names: tuple[str, ...],
    unset: Mapping[str, str] | None = None,
) -> list[str]:
    """Lines `name = value  # source` for --print-config; secrets show only whether they are set. unset: what an
    option left unset means, where "(not set)" would not say (a query flag the API decides)."""
    lines = []
    for dest in sorted(resolved.values):
        value = resolved.values[dest]
        if isinstance(value, str):
            value = without_credentials(value)  # a password in a URL is never shown (the URL is refused anyway)
        shown = (
            (unset or {}).get(dest, "(not set)")
            if value is None
            else repr(str(value) if isinstance(value, Path) else value)
        )
        lines.append(f"{dest.replace('_', '-')} = {shown}  # {resolved.sources[dest]}")
    for name in secret_names:
        state = "set (hidden)" if environ.get(name) else "not set"
        lines.append(f"{name}: {state}")
    return lines


ENV_TOKENS = ("CTCT_ACCESS_TOKEN", "CTCT_REFRESH_TOKEN")


def tokens_by_precedence(resolved: Resolved, environ: Mapping[str, str]) -> Resolved:
    """Credentials by flag, environment, config file, profile: a token file named only by the config file gives
    way to a token in the environment (the profile's login comes last, when none of them names a token)."""
    source = resolved.sources.get("token_file", "")
    in_env = [name for name in ENV_TOKENS if environ.get(name)]
    if not resolved.values.get("token_file") or not source.startswith("config") or not in_env:
        return resolved
    values = {**resolved.values, "token_file": None}
    sources = {**resolved.sources, "token_file": f"env {in_env[0]} wins over the {source}"}
    return Resolved(values, sources, resolved.keys)
