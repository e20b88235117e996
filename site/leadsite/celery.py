"""The Celery app. Configuration comes from Django settings prefixed ``CELERY_``."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings.dev")

app = Celery("leadsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def create_filesystem_broker_folders(sender, **kwargs):
    """The filesystem transport needs its folders to exist before a worker or producer starts."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
