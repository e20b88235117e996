"""Fixtures for the demo seed: a real, confirmed lead next to the synthetic ones."""

from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)
from tests.rights.conftest import confirmed_lead  # noqa: F401
