"""Where a request came from, so that an error names the field and the next step the user can type there.

`platform fork --at 99` and `POST /v1/executions/{id}/fork {"at": 99}` run the same
function; its error must say `--at` and `platform rerun ID` to the one and `at` and
`POST /v1/executions/ID/rerun` to the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Surface:
    """The command line (`http=False`) or the HTTP API (`http=True`)."""

    http: bool

    def field(self, name: str) -> str:
        """A request field as the user wrote it: `--at` on the command line, `at` in a JSON body."""
        return name if self.http else f"--{name.replace('_', '-')}"

    def rerun(self, execution_id: str) -> str:
        """How to rerun an execution."""
        return f"POST /v1/executions/{execution_id}/rerun" if self.http else f"`platform rerun {execution_id}`"

    @property
    def executions_listed(self) -> str:
        """Where the executions are listed."""
        return "GET /v1/executions lists them" if self.http else "`platform executions list` shows them"

    @property
    def deployments_listed(self) -> str:
        """Where the deployed components are listed."""
        return "GET /v1/deployments lists them" if self.http else "`platform deployments show` lists them"


CLI = Surface(http=False)
HTTP = Surface(http=True)
