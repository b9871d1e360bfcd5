"""Echo guest: every export returns its argument unchanged.

Exported functions that return a `result` must return the ok value or raise
`Err`, so the result echoes unwrap their argument; results nested inside other
values are ordinary `Ok`/`Err` objects and pass through as they are.
"""

from typing import Any

from componentize_py_types import Err
from wit_world import exports


def _unwrap(value: Any) -> Any:
    """Return the ok payload of a result, or raise its `Err`."""
    if isinstance(value, Err):
        raise value
    return value.value


class Prims(exports.Prims):
    def echo_bool(self, v: bool) -> bool:
        return v

    def echo_s8(self, v: int) -> int:
        return v

    def echo_s16(self, v: int) -> int:
        return v

    def echo_s32(self, v: int) -> int:
        return v

    def echo_s64(self, v: int) -> int:
        return v

    def echo_u8(self, v: int) -> int:
        return v

    def echo_u16(self, v: int) -> int:
        return v

    def echo_u32(self, v: int) -> int:
        return v

    def echo_u64(self, v: int) -> int:
        return v

    def echo_f32(self, v: float) -> float:
        return v

    def echo_f64(self, v: float) -> float:
        return v

    def echo_char(self, v: str) -> str:
        return v

    def echo_string(self, v: str) -> str:
        return v

    def mix(self, count: int, label: str, note: Any) -> Any:
        return (count, label, note)

    def nothing(self) -> None:
        return None


class Compound(exports.Compound):
    def echo_bytes(self, v: Any) -> Any:
        return v

    def echo_strings(self, v: Any) -> Any:
        return v

    def echo_chars(self, v: Any) -> Any:
        return v

    def echo_floats(self, v: Any) -> Any:
        return v

    def echo_grid(self, v: Any) -> Any:
        return v

    def echo_point(self, v: Any) -> Any:
        return v

    def echo_person(self, v: Any) -> Any:
        return v

    def echo_people(self, v: Any) -> Any:
        return v

    def echo_tuple(self, v: Any) -> Any:
        return v

    def echo_nested_tuple(self, v: Any) -> Any:
        return v


class Choices(exports.Choices):
    def echo_loose(self, v: Any) -> Any:
        return v

    def echo_strict(self, v: Any) -> Any:
        return v

    def echo_count_or_flag(self, v: Any) -> Any:
        return v

    def echo_maybe_or_text(self, v: Any) -> Any:
        return v

    def echo_shape(self, v: Any) -> Any:
        return v

    def echo_color(self, v: Any) -> Any:
        return v

    def echo_permissions(self, v: Any) -> Any:
        return v

    def echo_order(self, v: Any) -> Any:
        return v

    def echo_orders(self, v: Any) -> Any:
        return v

    def echo_option(self, v: Any) -> Any:
        return v

    def echo_option_string(self, v: Any) -> Any:
        return v

    def echo_option_option(self, v: Any) -> Any:
        return v

    def echo_option_triple(self, v: Any) -> Any:
        return v

    def echo_option_loose(self, v: Any) -> Any:
        return v

    def echo_option_list(self, v: Any) -> Any:
        return v

    def echo_result(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_result_err_only(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_result_ok_only(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_result_empty(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_result_same(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_result_bool(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_result_option(self, v: Any) -> Any:
        return _unwrap(v)

    def echo_results(self, v: Any) -> Any:
        return v

    def case_of_count_or_flag(self, v: Any) -> str:
        return f"{type(v).__name__}({v.value!r})"

    def case_of_result_bool(self, v: Any) -> str:
        return f"{type(v).__name__}({v.value!r})"

    def case_of_maybe_or_text(self, v: Any) -> str:
        return f"{type(v).__name__}({v.value!r})"

