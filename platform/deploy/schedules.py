"""The `schedules:` of a deployment file: read with their locations, then checked against the deployed functions.

```yaml
schedules:
  - name: nightly-report            # unique in the file; tags its executions schedule=NAME
    function: shop:reports/daily@1.0.0.run
    cron: "30 2 * * *"              # 5 fields, or 6 with seconds first ("*/10 * * * * *")
    timezone: Europe/Paris          # an IANA name; default UTC
    params: '{"region": "eu"}'      # JSON text, by name or by position; default []
    misfire: run-once               # run-once (default) | skip: see cron.py
```

Params are JSON text, as `platform call` takes them: values of the file are
read as the text written (yamlnodes.py), and JSON says what a number or a
string is. They are checked against the function's WIT signature when the
deployment is checked (`check_schedules`), with the codec every call uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from ..cron import MISFIRE_POLICIES, Schedule, check_cron, check_timezone
from ..errors import InvalidNameError, UsageError
from ..ffqn import Ffqn
from ..wit.codec import canonical_params
from ..wit.types import FunctionType
from .fields import swap
from .yamlnodes import Location, Problem, Reader

_KEYS = ("name", "function", "cron", "timezone", "params", "misfire")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """One entry of `schedules:` whose params are not checked yet (`raw_params`, as the JSON gave them)."""

    schedule: Schedule
    raw_params: Any
    location: Location

    def at(self, key: str) -> Location:
        """A location below this entry, for messages about one of its keys."""
        return self.location.child(key, self.location.line)


def read_schedule(reader: Reader, node: yaml.Node, where: Location) -> ScheduleEntry | None:
    """One entry of `schedules:`, or None (with problems recorded) when it is not usable."""
    before = len(reader.problems)
    keys = reader.mapping(node, where, _KEYS)
    if not keys and not isinstance(node, yaml.MappingNode):
        return None
    for required in ("name", "function", "cron"):
        if required not in keys:
            reader.problem(where, f"the key '{required}' is missing")
    get = {k: swap(v) for k, v in keys.items()}
    name = reader.string(*get["name"], pattern=_NAME_RE, hint="use lowercase letters, digits and '-', starting with a letter") if "name" in get else None
    function = reader.string(*get["function"]) if "function" in get else None
    if function is not None:
        try:
            Ffqn.parse(function)
        except InvalidNameError as exc:
            reader.problem(keys["function"][0], str(exc))
    cron = reader.string(*get["cron"]) if "cron" in get else None
    if cron is not None and (why := check_cron(cron)) is not None:
        reader.problem(keys["cron"][0], why)
    zone = reader.string(*get["timezone"]) if "timezone" in get else "UTC"
    if zone is not None and (why := check_timezone(zone)) is not None:
        reader.problem(keys["timezone"][0], why)
    misfire = reader.choice(*get["misfire"], MISFIRE_POLICIES) if "misfire" in get else "run-once"
    raw_params: Any = []
    if "params" in get:
        raw_params = _params(reader, *get["params"])
    if len(reader.problems) > before or None in (name, function, cron, zone, misfire):
        return None
    schedule = Schedule(name, function, cron, zone, [], misfire)  # type: ignore[arg-type]
    return ScheduleEntry(schedule, raw_params, where)


def _params(reader: Reader, node: yaml.Node, where: Location) -> Any:
    text = reader.text(node, where)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        reader.problem(where, f"params are JSON text, as `platform call` takes them ({exc}); e.g. params: '{{\"qty\": 2}}' or '[2]'")
        return None
    if not isinstance(value, (list, dict)):
        reader.problem(where, "params are a JSON array (by position) or object (by name), e.g. '[2]' or '{\"qty\": 2}'")
        return None
    return value


def check_schedules(entries: tuple[ScheduleEntry, ...], functions: Mapping[str, FunctionType]) -> tuple[list[Problem], tuple[Schedule, ...]]:
    """Each schedule names a deployed function and gives params that fit its WIT signature; returns them canonical."""
    problems: list[Problem] = []
    out: list[Schedule] = []
    for entry in entries:
        schedule = entry.schedule
        fty = functions.get(schedule.function)
        if fty is None:
            known = ", ".join(sorted(functions)[:8]) or "nothing"
            problems.append(
                Problem(entry.at("function"), f"schedule '{schedule.name}' names {schedule.function}, which no component in this deployment exports (it exports: {known})")
            )
            continue
        reason = fty.unsupported_reason()
        if reason:
            problems.append(Problem(entry.at("function"), f"{schedule.function} cannot be called by a schedule: {reason}"))
            continue
        try:
            params = canonical_params(entry.raw_params, fty)
        except UsageError as exc:
            problems.append(Problem(entry.at("params"), f"schedule '{schedule.name}': {exc} (the signature is {fty.wit()})"))
            continue
        out.append(replace(schedule, params=params))
    return problems, tuple(out)


def unique(reader: Reader, entries: list[ScheduleEntry], entry: ScheduleEntry) -> bool:
    """Whether `entry`'s name is not taken by an earlier entry (a problem otherwise)."""
    if any(e.schedule.name == entry.schedule.name for e in entries):
        reader.problem(entry.at("name"), f"schedule name '{entry.schedule.name}' is used twice; names must be unique")
        return False
    return True
