"""Development settings: the default for manage.py, pytest's parent, gunicorn and Celery."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
WHITENOISE_USE_FINDERS = True
