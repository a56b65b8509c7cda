"""Command-line options for every core.settings.Settings field, built from its metadata."""
from __future__ import annotations

import argparse
from typing import Any, Optional

from core.errors import SettingsError
from core.settings import BOOL, CHOICE, DEFAULTS, META, Meta, Settings, parse_value


def flag(name: str) -> str:
    """The option that sets the field `name` (e.g. --tau-max)."""
    return META[name].flag or "--" + name.replace("_", "-")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per setting (--encoder, --model, --method, --tau ...); an option not given
    leaves the setting at its default."""
    groups: dict[str, Any] = {}
    for name, meta in META.items():
        group = groups.get(meta.group) or groups.setdefault(
            meta.group, parser.add_argument_group(f"segmentation settings: {meta.group.lower()}"))
        group.add_argument(flag(name), dest=f"setting_{name}", default=argparse.SUPPRESS,
                           help=_help(meta, DEFAULTS[name]), **_kind_options(name, meta))


def _kind_options(name: str, meta: Meta) -> dict[str, Any]:
    if meta.kind == BOOL:
        return {"action": argparse.BooleanOptionalAction}
    if meta.kind == CHOICE:
        return {"choices": meta.choices}
    return {"type": lambda text: _parsed(name, text), "metavar": name.upper()}


def _parsed(name: str, text: str) -> Any:
    try:
        return parse_value(name, text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _help(meta: Meta, default: Any) -> str:
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{meta.help} (default: {shown!s})".replace("%", "%%")


def settings_from_args(args: argparse.Namespace, base: Optional[Settings] = None) -> Settings:
    """`base` (default: the defaults) with the options given on the command line; a --tau above
    the default tau_max raises it. SettingsError on an invalid value or combination."""
    changes = {name: getattr(args, f"setting_{name}") for name in META if hasattr(args, f"setting_{name}")}
    base = base or Settings()
    if "tau" in changes and "tau_max" not in changes:
        changes["tau_max"] = max(base.tau_max, changes["tau"])
    settings = base.replace(**changes)
    problem = settings.conflict()
    if problem:
        raise SettingsError(problem)
    return settings
