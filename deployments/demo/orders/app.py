"""Demo workflows: each call below is a child execution recorded in the log, so a
crash at any point resumes here by replay, and the sleep is durable."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, inventory

ITEM = "widget"


class Orders(exports.Orders):
    def place(self, order_id: str, qty: int) -> str:
        unit = inventory.price(ITEM)
        try:
            reservation = inventory.reserve(ITEM, qty)
        except Err as failed:
            raise Err(f"order {order_id} cannot be placed: {failed.value}") from failed
        return f"order {order_id}: {qty} x {ITEM} at {unit} cents = {qty * unit} cents ({reservation})"

    def subscribe(self, customer: str, periods: int, interval_ms: int) -> str:
        receipts = []
        for period in range(periods):
            if period:
                host.sleep(interval_ms)
            receipts.append(inventory.charge(customer, 999))
        return f"{customer}: {len(receipts)} charges ({', '.join(receipts)})"
