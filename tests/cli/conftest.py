"""Fixtures for tests that run the guest components under tests/components/."""

from tests.support.guests import (  # noqa: F401 - fixtures are registered by import
    echo_guest,
    faults_guest,
    greeter_v1_guest,
    greeter_v2_guest,
    guest_loader,
)
