"""Tests of authentication, roles and limits."""
