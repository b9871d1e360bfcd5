"""Deployments: a YAML spec resolved, checked and stored as a revision, then running workflows upgraded.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .spec import DeploymentSpec, load_spec, parse_spec
    from .pipeline import DeployPlan, DeployResult, deploy, plan_deployment, rollback
    from .apply import Deployer
    from .upgrade_decisions import Decision, FunctionChange, decide
    from .upgrade_checks import PendingUpgrades, UpgradeReport, Upgrader

# Each exported name -> the module that defines it.
_EXPORTS = {
    "Decision": "upgrade_decisions",
    "DeployPlan": "pipeline",
    "DeployResult": "pipeline",
    "Deployer": "apply",
    "DeploymentSpec": "spec",
    "FunctionChange": "upgrade_decisions",
    "PendingUpgrades": "upgrade_checks",
    "UpgradeReport": "upgrade_checks",
    "Upgrader": "upgrade_checks",
    "decide": "upgrade_decisions",
    "deploy": "pipeline",
    "load_spec": "spec",
    "parse_spec": "spec",
    "plan_deployment": "pipeline",
    "rollback": "pipeline",
}

__all__ = [
    "Decision",
    "DeployPlan",
    "DeployResult",
    "Deployer",
    "DeploymentSpec",
    "FunctionChange",
    "PendingUpgrades",
    "UpgradeReport",
    "Upgrader",
    "decide",
    "deploy",
    "load_spec",
    "parse_spec",
    "plan_deployment",
    "rollback",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
