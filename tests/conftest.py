"""Fixtures shared by the whole suite."""

import pytest


@pytest.fixture
def demo_site(db):
    """The demo site as `make run` seeds it: a German home page and two standard pages."""
    from leadsite import demo

    site, _changes = demo.seed(personas=False)
    return site
