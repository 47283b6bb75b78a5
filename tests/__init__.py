"""Tests mirror the packages; small hand-checkable instances live beside them."""
