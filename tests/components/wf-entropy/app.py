"""Host randomness drawn before and after the first Dolmen host call (reused instances must draw it as fresh ones do)."""

import json
import os
import uuid

from wit_world import exports
from wit_world.imports import host


class Flows(exports.Flows):
    def early(self) -> str:
        urandom = os.urandom(8).hex()
        drawn = str(uuid.uuid4())
        return json.dumps({"urandom": urandom, "uuid": drawn, "u64": host.random_u64()})

    def late(self) -> str:
        return json.dumps({"u64": host.random_u64()})
