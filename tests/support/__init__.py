"""Helpers shared by the test suite: real servers, guest builds, polling."""
