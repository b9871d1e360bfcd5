"""The size limit of one value (a call's params, a result), and why it is what it is.

Every value a guest hands to the host (an export's result, the params of a
call a workflow makes) is copied out of the guest as wasmtime's dynamic
component values, and wasmtime bounds each such copy with its "hostcall
fuel": 128 MiB per copy, each copy starting afresh (`DEFAULT_HOSTCALL_FUEL`,
crates/wasmtime/src/runtime/component/store.rs; `LiftContext::new` and
`consume_fuel`, func/options.rs), charged as each string's
bytes (`WasmStr::new`, func/typed.rs) plus `size_of::<Val>()` per list
element (`load_list`, values.rs); records, tuples, variants, options,
results, enums, flags and numbers cost nothing of their own. Past the budget
the copy fails with "fuel allocated for hostcalls has been exhausted". The
budget is a `Store` setting (`Store::set_hostcall_fuel`) that wasmtime-py's C
API does not expose, so Dolmen cannot raise it: a `list<u8>` of 3 MB costs
about 137 MiB and can never leave a guest, while a 32 MiB string costs 32 MiB.

Dolmen therefore limits a value by the size of its compact JSON text, which
bounds that cost for every WIT type: each list element takes at least two
bytes of JSON (a digit and a comma; the brackets pay for the last one) and
costs `VAL_BYTES`, each string byte takes at least one byte of JSON and costs
one, so a value of J bytes of JSON costs less than J * VAL_BYTES / 2. At the
default limit that is at most 96 MiB of the 128. The limit can be raised for
values made of strings; lists of small elements stay bound by the budget
(`MAX_LIST_U8` elements for a `list<u8>`), and the same clear failure
(`copy_budget_message`) reports a value that runs out of it.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ValueTooLargeError

MAX_VALUE_ENV = "DOLMEN_MAX_VALUE_BYTES"
DEFAULT_MAX_VALUE_BYTES = 4 * 1024 * 1024
# wasmtime 50's copy budget per value, and what one list element costs of it
# (`size_of::<wasmtime::component::Val>()` on 64-bit hosts; measured: a list<u8>
# of 2,796,202 elements is the longest that leaves a guest).
HOSTCALL_FUEL = 128 * 1024 * 1024
VAL_BYTES = 48
MAX_LIST_U8 = HOSTCALL_FUEL // VAL_BYTES
# Every value of up to this many bytes of JSON fits the budget (see above).
SAFE_VALUE_BYTES = 2 * HOSTCALL_FUEL // VAL_BYTES
# How wasmtime reports an exhausted budget (`HostcallFuelExhausted`, func/options.rs).
FUEL_EXHAUSTED = "fuel allocated for hostcalls has been exhausted"


def json_size(value: Any) -> int:
    """The bytes of `value`'s compact JSON text in UTF-8: what the limit counts."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def too_large_message(what: str, size: int, limit: int) -> str:
    """Why `what`, of `size` bytes of JSON, is refused, and the ways out."""
    return (
        f"the JSON of {what} is {size} bytes, over the limit of {limit} bytes for one value; "
        f"pass large data by reference (e.g. a URL), or raise {MAX_VALUE_ENV} on the gateways and runners"
    )


def check_value(value: Any, limit: int, what: str) -> None:
    """Raise `ValueTooLargeError` when `value`'s JSON is over `limit` bytes."""
    size = json_size(value)
    if size > limit:
        raise ValueTooLargeError(too_large_message(what, size, limit))


def copy_budget_message(what: str, limit: int) -> str:
    """Why `what` could not be copied out of the guest at all, and the ways out."""
    return (
        f"{what} could not be copied out of the guest: it needs more than wasmtime's fixed budget of "
        f"{HOSTCALL_FUEL // (1024 * 1024)} MiB per value (each string's bytes plus {VAL_BYTES} bytes per "
        f"list element: a list<u8> of {MAX_LIST_U8:,} elements fills it), which Dolmen cannot raise; "
        f"the limit for one value is {limit} bytes as JSON ({MAX_VALUE_ENV}), and every value of up to "
        f"{SAFE_VALUE_BYTES} bytes fits the budget: pass larger data by reference (e.g. a URL)"
    )
