"""Every Redis key Dolmen uses, in one place.

Keys of one execution tree carry the root id as a Redis Cluster hash tag,
`dolmen:{E_...}:...`, so every Lua script touches a single slot. Keys that
span trees (queues, timers, the dirty, executions, active, expiry and tag
indexes) are split into shards (store/shards.py, which names them) and
only written outside those scripts, through the tree's outbox or as
idempotent pre-writes.
"""

from __future__ import annotations

PREFIX = "dolmen"

# Deployment keys share the {deploy} hash tag so a revision is stored in one MULTI.
DEPLOY_ACTIVE = f"{PREFIX}:{{deploy}}:active"  # string: active revision number
DEPLOY_REVS = f"{PREFIX}:{{deploy}}:revisions"  # zset revision -> created ms
DEPLOY_SEQ = f"{PREFIX}:{{deploy}}:seq"  # counter of revisions
# hash revision -> ms when it stopped being the active one (`platform gc` keeps it for a grace period).
DEPLOY_RETIRED = f"{PREFIX}:{{deploy}}:retired"
# zset "<token> <digest>" -> ms: components a deploy is storing; `platform gc` leaves them alone (see store/garbage.py).
DEPLOY_CLAIMS = f"{PREFIX}:{{deploy}}:claims"
UPGRADES = f"{PREFIX}:upgrades"  # list of pending upgrade-verification requests
QUEUE_GROUP = "runners"
# Pub/sub channel: the id of every execution that finishes, published by the
# script that writes its `finished` event (`notify_finished` in lua/_prelude.lua).
FINISHED_CHANNEL = f"{PREFIX}:finished"
# Pub/sub channel: the id of every running execution whose cancellation was
# requested, published by cancel.lua (`CANCEL_CHANNEL` in lua/_prelude.lua).
CANCEL_CHANNEL = f"{PREFIX}:cancel"
# Hash ffqn -> ms: the functions paused as a whole (store/pauses.py). Runners read no queue of theirs.
PAUSED_FUNCTIONS = f"{PREFIX}:paused-functions"
# The priority classes other than normal that were ever queued (set; see platform/priorities.py).
PRIORITIES = f"{PREFIX}:priorities"


def root_of(execution_id: str) -> str:
    """The id of the tree root of `execution_id` (the part before the first `.`), its keys' hash tag."""
    return execution_id.split(".", 1)[0]


def state(execution_id: str) -> str:
    """Hash of the execution's state fields (`records.ExecutionState`)."""
    return f"{PREFIX}:{{{root_of(execution_id)}}}:{execution_id}:state"


def log(execution_id: str) -> str:
    """Stream of the execution's events, fields `t` (type), `d` (JSON data), `at` (ms)."""
    return f"{PREFIX}:{{{root_of(execution_id)}}}:{execution_id}:log"


def done(execution_id: str) -> str:
    """Hash of response ids already delivered to this execution (idempotent delivery)."""
    return f"{PREFIX}:{{{root_of(execution_id)}}}:{execution_id}:done"


def outbox(root: str) -> str:
    """List of the tree's outbox messages (JSON, see store/outbox.py) not carried out yet."""
    return f"{PREFIX}:{{{root}}}:outbox"


def purged(root: str) -> str:
    """A removed tree's tombstone: what is left to clean in the global indexes (store/trees.py)."""
    return f"{PREFIX}:{{{root}}}:purged"


def chain_head(first: str) -> str:
    """`<chain-index> <execution-id>`: where the continue-as-new chain that starts at `first` is (lua/chain_head.lua)."""
    return f"{PREFIX}:{{{first}}}:head"


def idempotency(key: str) -> str:
    """String: the execution id an idempotency key is bound to (for `creates.IDEMPOTENCY_TTL_S`)."""
    return f"{PREFIX}:idem:{key}"


def deployment(revision: int) -> str:
    """String: a revision's JSON (`model.Revision.to_json`)."""
    return f"{PREFIX}:{{deploy}}:rev:{revision}"


def blob(digest: str) -> str:
    """Component bytes, so runners on any machine can load any deployed digest."""
    return f"{PREFIX}:blob:{digest}"


BLOB_PREFIX = f"{PREFIX}:blob:"


def blob_condemned(digest: str) -> str:
    """`platform gc`'s mark on a blob it is about to delete; the hash tag is the blob's whole key, so both share a slot."""
    return f"{{{blob(digest)}}}:condemned"


def cron_state(schedule: str) -> str:
    """A cron schedule's hash (`since`, `last`, `fired`), in a slot of its own (store/cron_state.py)."""
    return f"{PREFIX}:{{cron:{schedule}}}:state"


def limit_running(ffqn: str) -> str:
    """A limited function's permits (zset: `EXECUTION_ID|OWNER` -> permit end ms), in the function's own slot (store/limits.py)."""
    return f"{PREFIX}:{{lim:{ffqn}}}:running"


def limit_rate(ffqn: str) -> str:
    """When a rate-limited function may start next (ms), in the slot of `limit_running`."""
    return f"{PREFIX}:{{lim:{ffqn}}}:rate"
