"""Celery entry points of the site. Thin: each calls a plain function."""

from celery import shared_task

from . import health


@shared_task(bind=True, ignore_result=True)
def answer_heartbeat(self):
    health.record_answer(self.request.hostname or "worker")
