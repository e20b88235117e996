"""Personas tests use the gated-content fixtures (a site with purposes, a gated page, …)."""

from tests.gated.conftest import (  # noqa: F401
    asset,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
)
