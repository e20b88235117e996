"""The Django project: settings, URLs, WSGI, the Celery app and the site's own page types."""

from .celery import app as celery_app

__all__ = ["celery_app"]
