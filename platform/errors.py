"""One error hierarchy for everything Dolmen reports to a user.

Every message names what is wrong and how to fix it. Adapters that call
third-party libraries (redis, wasmtime, oras, yaml) translate their exceptions
into these, so nothing above an adapter sees a foreign exception type.
"""

from __future__ import annotations

from typing import Any


class DolmenError(Exception):
    """Base of every error Dolmen raises on purpose.

    `code` is a stable machine-readable name (used by the HTTP API), `exit_code`
    the CLI's exit status, and `retryable` whether trying again may succeed.
    """

    code: str = "error"
    exit_code: int = 1
    retryable: bool = False

    def __init__(self, message: str, *, path: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(DolmenError):
    """Bad configuration: a deployment file, a flag, an environment variable."""

    code = "config_error"
    exit_code = 2


class UsageError(ConfigError):
    """The command line or request itself is malformed."""

    code = "usage_error"


class InvalidValueError(UsageError):
    """A JSON value does not fit the WIT type it must be converted to.

    `path` locates the bad field, e.g. ``params.p.label`` or ``params[1]``.
    """

    code = "invalid_value"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", path=path)
        self.problem = problem


class InvalidNameError(UsageError):
    """A function name, execution id or reference is malformed."""

    code = "invalid_name"


class NotFoundError(DolmenError):
    """Something named by the user does not exist."""

    code = "not_found"
    exit_code = 3


class ConflictError(DolmenError):
    """The request conflicts with existing state (e.g. an idempotency key reused)."""

    code = "conflict"


class NotAStubError(ConflictError):
    """A result was supplied for an execution that runs (an activity or a workflow), not a stub."""

    code = "not_a_stub"


class ResultRecordedError(ConflictError):
    """A stub execution already finished with another outcome: its result is recorded once."""

    code = "result_recorded"


class NotExternalError(ConflictError):
    """A worker asked for an execution that is not of a function deployed as `kind: external`."""

    code = "not_external"


class LeaseLostError(ConflictError):
    """An external worker's lease is no longer its own: taken over, finished, timed out or cancelled.

    `details["reason"]` says which; the worker drops the task (what it would write is refused).
    """

    code = "lease_lost"


class NotPausableError(ConflictError):
    """An execution that cannot be paused or resumed: it has finished, or it is a stub (never run)."""

    code = "not_pausable"


class ShutdownTimeoutError(DolmenError):
    """A process asked to stop still runs after the time allowed (`platform down --timeout`); exit 1."""

    code = "shutdown_timeout"


class ComponentError(DolmenError):
    """A WebAssembly component cannot be loaded, compiled or linked."""

    code = "component_error"


class RegistryError(DolmenError):
    """An OCI registry operation failed."""

    code = "registry_error"


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (401/403)."""

    code = "registry_auth"


class RegistryNotFoundError(RegistryError, NotFoundError):
    """The registry has no such repository, tag or digest."""

    code = "registry_not_found"
    exit_code = 3


class RegistryUnavailableError(RegistryError):
    """The registry cannot be reached or keeps failing (5xx)."""

    code = "registry_unavailable"
    retryable = True


class IntegrityError(RegistryError):
    """Bytes do not match the digest they were published under."""

    code = "integrity_error"


class StoreError(DolmenError):
    """The execution store (Redis/Valkey) failed or is unreachable."""

    code = "store_error"
    retryable = True


class StoreUnavailableError(StoreError):
    """The store could not be reached (connection refused, reset or timed out).

    Writes are safe to send again (each carries a write id), so callers retry
    them; nothing about the execution itself went wrong.
    """


class StoreAccessError(StoreError):
    """The store refused this process: a user or password it does not accept, a command the
    user may not run, or a TLS connection that could not be set up (an untrusted certificate).

    Trying again changes nothing until the URL (or the server's ACL) is fixed.
    """

    code = "store_access"
    exit_code = 2
    retryable = False


class StoreFullError(StoreError):
    """The store refused a write because its memory reached `maxmemory` (policy noeviction).

    Nothing of the refused write was stored: Valkey refuses a script before its
    first write (see README "When Valkey is full"). Retryable once memory is
    freed (purging finished executions, a shorter retention, a larger maxmemory).
    """

    code = "store_full"


class ReplicaWaitError(StoreError):
    """A master ran a write, but fewer of its replicas than asked for (`--wait-replicas`) confirmed it in time.

    The write is done on the master and stays done unless that master fails
    before a replica has it. Sending it again is safe (every Dolmen write is
    idempotent) and waits for the replicas again. `where` names the master;
    `shortfall` says what the replicas answered, e.g. "only 0 of the 1
    replicas asked for confirmed it within 1000 ms".
    """

    code = "replicas_unconfirmed"

    def __init__(self, message: str, *, where: str, shortfall: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.where = where
        self.shortfall = shortfall

    def retold(self, message: str, **details: Any) -> ReplicaWaitError:
        """The same shortfall, told for what the caller was doing (an invocation, a cancel)."""
        return ReplicaWaitError(message, where=self.where, shortfall=self.shortfall, **{**self.details, **details})


class FencedError(StoreError):
    """A write was refused because another runner took the execution over."""

    code = "fenced"
    retryable = False


class LogWentBackError(FencedError):
    """A workflow's write was refused: its log no longer holds what its runner read.

    A failover of the store lost log entries the runner had already read (on a
    cluster, asynchronous replication). The script released the lease and the
    execution is queued again: a runner replays it from the log as it is.
    """

    code = "log_went_back"


class PayloadTooLargeError(UsageError):
    """Params or a request body exceed the configured limit."""

    code = "payload_too_large"


class ExecutionError(DolmenError):
    """An execution failed. `kind` is one of the failure kinds below."""

    code = "execution_failed"
    kind: str = "failed"

    def __init__(self, message: str, *, execution_id: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.execution_id = execution_id


class TrapError(ExecutionError):
    """The guest trapped (panic, unreachable, out of memory, ...)."""

    code = "trap"
    kind = "trap"
    retryable = True


class ExecutionTimeoutError(ExecutionError):
    """The guest ran past its time limit and was interrupted."""

    code = "timeout"
    kind = "timeout"
    retryable = True


class NonDeterminismError(ExecutionError):
    """A workflow asked for something other than what its log holds."""

    code = "non_determinism"
    kind = "non_determinism"

    def __init__(
        self,
        message: str,
        *,
        execution_id: str | None = None,
        event_index: int | None = None,
        logged: str | None = None,
        requested: str | None = None,
    ) -> None:
        super().__init__(message, execution_id=execution_id)
        self.event_index = event_index
        self.logged = logged
        self.requested = requested


class CancelledError(ExecutionError):
    """The execution was cancelled."""

    code = "cancelled"
    kind = "cancelled"


class ChildFailedError(ExecutionError):
    """A child execution a workflow called directly did not return a value."""

    code = "child_failed"
    kind = "child_failed"


class ValueTooLargeError(ExecutionError):
    """A value (a result, or the params of a call a workflow made) is over the size limit of one value.

    Never retried: the same code makes the same value again.
    """

    code = "value_too_large"
    kind = "value_too_large"


class HistoryLimitError(ExecutionError):
    """A workflow's event log is over its history limit (events or bytes, see `model.HistoryLimit`).

    Never retried: replaying the same code grows the same log again. The fix
    is in the workflow: continue as new before the limit.
    """

    code = "history_limit"
    kind = "history_limit"


class ContinueAsNewError(ExecutionError):
    """A workflow's continue-as-new was refused: params that do not fit its function, or a child execution.

    Never retried: replaying the same code asks for the same again.
    """

    code = "continue_as_new"
    kind = "trap"


class SecretUnavailableError(ConfigError):
    """A deployment's `{secret: NAME}` cannot be resolved on this runner: unset, empty, or its file unreadable.

    Retryable: providing the secret (or fixing the file) lets a later attempt run.
    `secret` names it; the message never holds a secret's value.
    """

    code = "secret_unavailable"
    retryable = True

    def __init__(self, message: str, *, secret: str | None = None) -> None:
        super().__init__(message, secret=secret)
        self.secret = secret


class DeploymentError(ConfigError):
    """A deployment is invalid; nothing was changed."""

    code = "deployment_error"


class WasmtimeVersionError(ConfigError):
    """The installed wasmtime-py is not the release Dolmen's patches of its internals were written for.

    `found` is the installed version, `patched` the one the patches expect.
    """

    code = "wasmtime_version"

    def __init__(self, message: str, *, found: str, patched: str) -> None:
        super().__init__(message, found=found, patched=patched)
        self.found = found
        self.patched = patched
