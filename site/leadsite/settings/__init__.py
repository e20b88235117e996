"""Settings modules: ``base`` (shared), ``dev`` (default), ``production`` and ``test``.

Every value that differs between machines comes from the environment (12-factor).
"""
