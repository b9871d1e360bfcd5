"""Demo activities: a tiny, deterministic stand-in for an inventory and a payment service."""

import hashlib

from componentize_py_types import Err
from wit_world import exports

STOCK = 100


class Inventory(exports.Inventory):
    def price(self, item: str) -> int:
        return 100 + int(hashlib.sha256(item.encode()).hexdigest()[:4], 16) % 900

    def reserve(self, item: str, qty: int) -> str:
        if qty > STOCK:
            raise Err(f"only {STOCK} {item} in stock, {qty} asked")
        return f"res-{item}-{qty}"

    def charge(self, customer: str, cents: int) -> str:
        if not customer:
            raise Err("no customer to charge")
        return f"rcpt-{customer}-{cents}"
