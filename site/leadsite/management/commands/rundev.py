"""`manage.py rundev`: the development server, a Celery worker and beat, stopped together by Ctrl-C."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

STOP_TIMEOUT = 10


class Command(BaseCommand):
    help = "Run runserver, a Celery worker and Celery beat; Ctrl-C (or SIGTERM) stops all three."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        manage = Path(settings.BASE_DIR) / "manage.py"
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        commands = {
            "web": [sys.executable, str(manage), "runserver", addrport],
            "worker": [celery, "-A", "leadsite", "worker", "--loglevel", "INFO", "--concurrency", "2"],
            "beat": [celery, "-A", "leadsite", "beat", "--loglevel", "INFO",
                     "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        }
        # Own sessions: the terminal's Ctrl-C reaches only this process, which stops the others
        # in order and waits for them, instead of three processes racing to shut down.
        processes = {name: subprocess.Popen(command, start_new_session=True)
                     for name, command in commands.items()}
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the others.")
                    stopping, exit_code = True, 1
            time.sleep(0.5)
        self.stdout.write("Stopping web, worker and beat …")
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stdout.write("All stopped.")
        sys.exit(exit_code)
