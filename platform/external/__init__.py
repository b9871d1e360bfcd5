"""External workers: executions of `kind: external` functions, claimed and settled over HTTP by workers in any language."""

from .tasks import MAX_CLAIM, ExternalTasks, Settled, Task, check_claimed, iso_time, lease_ms_of
from .tokens import TaskToken

__all__ = ["MAX_CLAIM", "ExternalTasks", "Settled", "Task", "TaskToken", "check_claimed", "iso_time", "lease_ms_of"]
