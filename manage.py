#!/usr/bin/env python
"""Django's command-line utility."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # `site/` holds the project package `leadsite`; `pip install -e .` maps it too,
    # this line only lets manage.py work before the install.
    sys.path.insert(0, str(Path(__file__).resolve().parent / "site"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
