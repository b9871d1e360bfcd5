"""Name a component on the command line: a deployed digest, a `.wasm` file or an `oci://` reference.

`platform fork --component` and `platform rerun --component` may run an
execution on a component that is not deployed. Runners find an execution's
settings through the revision it names, so such a component is stored as an
inactive revision of its own (`adhoc:` name) that copies the settings of the
component it stands in for; it is never routed to and cannot be rolled back to.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path


from ...registry.pull import fetch_component
from ..errors import NotFoundError, UsageError
from ..ffqn import Ffqn
from ..store.deployments import DeploymentStore
from .apply import Deployer
from ..model import ComponentConfig, Revision, similar_functions
from .upgrade_decisions import FunctionChange
from ..store.connection import StoreClient
from ..surface import CLI, Surface

ADHOC_PREFIX = "adhoc:"


@dataclass(frozen=True, slots=True)
class ChosenComponent:
    """Where to pin an execution: the digest, and the revision and component that describe it."""

    digest: str
    revision: int
    component: str
    config: ComponentConfig


def find_digest(store: DeploymentStore, digest: str) -> tuple[Revision, ComponentConfig] | None:
    """The newest revision mentioning `digest` and its component, or None."""
    active = store.active()
    if active is not None and (comp := active.by_digest(digest)) is not None:
        return active, comp
    for number in reversed(store.numbers()):
        revision = store.get(number)
        comp = revision.by_digest(digest)
        if comp is not None:
            return revision, comp
    return None


def choose_component(
    client: StoreClient,
    data_dir: Path,
    ref: str,
    *,
    ffqn: str,
    like: ComponentConfig,
) -> ChosenComponent:
    """The component named by `ref` (a `sha256:` digest, an `oci://` reference or a `.wasm` path), which must export
    `ffqn`; `like` gives the settings of an ad-hoc one.

    Raises `NotFoundError` for a digest in no revision or a file that does not
    exist, `UsageError` when the component does not export `ffqn`, and what
    pulling (`fetch_component`) or loading (`ComponentError`) raises.
    """
    store = DeploymentStore(client)
    if ref.startswith("sha256:"):
        found = find_digest(store, ref)
        if found is None:
            raise NotFoundError(
                f"component {ref} is in no deployment revision; pass its .wasm file or oci:// reference instead"
            )
        revision, comp = found
        _require_export(comp, ffqn, ref)
        return ChosenComponent(comp.digest, revision.number, comp.name, comp)
    deployer = Deployer(client, data_dir)
    if ref.startswith("oci://"):
        fetched = fetch_component(ref, deployer.cache)
        data, source = deployer.cache.get(fetched.component_digest), str(fetched.reference)
    else:
        path = Path(ref)
        if not path.is_file():
            raise NotFoundError(f"component '{ref}' not found: give a .wasm file, a sha256: digest or an oci:// reference")
        data, source = path.read_bytes(), str(path.resolve())
    template = dataclasses.replace(like, digest="", functions={}, imports=(), source=source)
    config = deployer.prepare(template, data).config
    _require_export(config, ffqn, ref)
    found = find_digest(store, config.digest)
    if found is not None:
        revision, comp = found
        return ChosenComponent(comp.digest, revision.number, comp.name, comp)
    revision = deployer.apply(f"{ADHOC_PREFIX}{config.digest[7:19]}", [(config, data)], source=source, activate=False)
    return ChosenComponent(config.digest, revision.number, config.name, config)


def _require_export(config: ComponentConfig, ffqn: str, ref: str) -> None:
    if ffqn not in config.functions:
        exported = ", ".join(sorted(config.functions)) or "nothing"
        raise UsageError(f"component {ref} does not export {Ffqn.parse(ffqn)}; it exports {exported}")


def full_digest(store: DeploymentStore, text: str, *, field: str = "to", surface: Surface = CLI) -> str:
    """The deployed component digest that `text` (a digest or a unique prefix, `sha256:` optional) names.

    Errors point at `field`, the request field that gave `text`, and name where `surface` lists the components:
    `UsageError` when `text` is no digest nor the start of one (at least one hex digit; upper case is taken as
    lower, `SHA256:` too), or when
    several deployed digests start so; `NotFoundError` when none does.
    """
    hex_part = text.lower().removeprefix("sha256:")
    if not _HEX_PREFIX.match(hex_part):
        raise UsageError(
            f"{text!r} is not a component digest nor the start of one: give `sha256:` and hex digits, or just the "
            f"first hex digits (12 are shown); {surface.deployments_listed}",
            path=field,
        )
    wanted = f"sha256:{hex_part}"
    known = {c.digest for n in store.numbers() for c in store.get(n).components}
    matches = sorted(d for d in known if d.startswith(wanted))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(
            f"no deployed component has digest {text}; {surface.deployments_listed}", path=field
        )
    shown = ", ".join(m[:19] for m in matches)
    raise UsageError(
        f"{text} matches {len(matches)} components ({shown}); give more of the digest", path=field
    )


def digest_filter(store: DeploymentStore, text: str, *, field: str = "digest", surface: Surface = CLI) -> str:
    """The whole digest a listing's digest filter names: a whole `sha256:` digest as it is (its component may be
    in no revision any more), else the deployed digest `text` is a unique prefix of (`full_digest`, whose
    `NotFoundError` and `UsageError` it raises)."""
    if _WHOLE_DIGEST.match(text):
        return text
    return full_digest(store, text, field=field, surface=surface)


_WHOLE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{1,64}\Z")


def upgrade_target(
    store: DeploymentStore, ffqn: str, to: str, *, force: bool = False, surface: Surface = CLI
) -> FunctionChange:
    """The on-demand upgrade of the workflow `ffqn` to the deployed component `to` (a digest or a unique prefix).

    Shared by `platform upgrade` and the gateway's upgrade check, so both refuse the same targets alike.
    Raises `InvalidNameError` for a malformed `ffqn`, `NotFoundError` when it
    or `to` is not deployed, `UsageError` when `ffqn` is not a workflow, `to`
    is ambiguous, or the component of `to` does not export the workflow.
    """
    Ffqn.parse(ffqn)
    _require_workflow(store, ffqn)
    digest = full_digest(store, to, surface=surface)
    found = find_digest(store, digest)
    if found is None:  # pragma: no cover - full_digest only returns known digests
        raise NotFoundError(f"component {to} is in no revision", path="to")
    revision, comp = found
    if comp.kind != "workflow" or ffqn not in comp.functions:
        raise UsageError(
            f"component {digest[:19]} ('{comp.name}', {comp.kind}) does not export the workflow {ffqn}",
            path="to",
        )
    return FunctionChange(ffqn, digest, comp.name, "force" if force else "verified", revision.number)


def _require_workflow(store: DeploymentStore, ffqn: str) -> None:
    """Refuse a function no revision deploys (404 naming close names) or one that is not a workflow."""
    kinds = {c.kind for n in store.numbers() for c in store.get(n).components if ffqn in c.functions}
    if not kinds:
        active = store.active()
        if active is None:
            raise NotFoundError(f"function {ffqn} is not deployed (nothing is deployed yet)")
        active.route(ffqn)  # raises the NotFoundError that lists close names
        raise NotFoundError(f"function {ffqn} is not deployed")  # pragma: no cover - route found it
    if "workflow" not in kinds:
        kind = sorted(kinds)[0]
        raise UsageError(
            f"{ffqn} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a workflow: only a workflow keeps a log "
            "that an upgrade replays; an activity's next attempt runs on whatever component is deployed then"
        )


def unknown_ffqn_hint(store: DeploymentStore, ffqn: str) -> str | None:
    """Why a listing filtered by `ffqn` is empty when no stored revision has that function (a typo?), with the
    close names invoking offers (`similar_functions`); None when a revision has it.

    Reads every stored revision: meant for an empty listing, not for every page.
    """
    known: set[str] = set()
    for number in store.numbers():
        try:
            known.update(store.get(number).functions())
        except NotFoundError:  # removed by `platform gc` meanwhile
            continue
    if ffqn in known:
        return None
    similar = similar_functions(ffqn, known)
    close = f"; did you mean {', '.join(similar)}?" if similar else ""
    return f"no stored deployment revision has the function {ffqn}{close}"

