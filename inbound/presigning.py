"""Django's signed tokens, made with the derived key computed once per salt.

`django.core.signing` derives the HMAC key from the salt and SECRET_KEY anew for every token
(a hash, then HMAC's own two key hashes) and builds a JSON encoder per call. A bulk sender signs
two or three tokens per mail (unsubscribe, preferences, tracked links), where that set-up is
most of the cost. `Presigner(salt)` makes exactly the tokens `Signer(salt=salt).sign_object`
or, with `timestamped=True`, `signing.dumps(…, salt=salt)` make, from an HMAC state keyed once
(copied per token); they are checked by Django's own `unsign_object` and `signing.loads`, which
`tests/test_presigning.py` asserts for random payloads, byte for byte against Django.
"""

import functools
import hashlib
import hmac
import json
import time
import zlib

from django.conf import settings
from django.core.signing import b62_encode, b64_encode
from django.utils.encoding import force_bytes

_ENCODER = json.JSONEncoder(separators=(",", ":"))  # what signing.JSONSerializer writes


@functools.lru_cache(maxsize=32)
def _keyed(salt, secret):
    """HMAC-SHA256 keyed as `salted_hmac(salt + "signer", …, secret)` keys it."""
    key = hashlib.sha256(force_bytes(salt + "signer") + force_bytes(secret)).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


class Presigner:
    """Signs objects as Django's `Signer` (or `TimestampSigner`, `timestamped`) with `salt` and
    settings.SECRET_KEY (read on each call: an override in tests takes effect)."""

    def __init__(self, salt, timestamped=False):
        self.salt = salt
        self.timestamped = timestamped

    def sign_object(self, obj, compress=False):
        data = _ENCODER.encode(obj).encode("latin-1")
        prefix = ""
        if compress:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                data, prefix = compressed, "."
        value = prefix + b64_encode(data).decode()
        if self.timestamped:
            value = f"{value}:{b62_encode(int(time.time()))}"
        mac = _keyed(self.salt, settings.SECRET_KEY).copy()
        mac.update(value.encode())
        return f"{value}:{b64_encode(mac.digest()).decode()}"
