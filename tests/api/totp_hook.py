"""Schemathesis hook: the requests of a prefecture's run carry the six
digits of its second factor (`X-TOTP`) as a phone shows them now, computed
from DECOMPTE_TOTP_SECRET (RFC 6238: HMAC-SHA-1, 30-second steps, six
digits) with the standard library."""
import base64
import hashlib
import hmac
import os
import struct
import sys
import time

import schemathesis

# Hypothesis parses the source of the strategies' lambdas to describe them;
# deep in the stack, Python 3.11's AST construction can hit the recursion
# limit and fail on its error path (CPython gh-106905: "AST constructor
# recursion depth mismatch"), an error of the tool, not of the API, seen
# once in a loaded run. A higher limit leaves it room.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

SECRET = os.environ.get("DECOMPTE_TOTP_SECRET", "")


def totp(secret, at=None):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


@schemathesis.hook
def before_call(context, case, kwargs):
    # Only where schemathesis put the scheme's header: when it leaves the
    # header out on purpose (to check the refusal), it stays out.
    headers = case.headers or {}
    if SECRET and "X-TOTP" in headers:
        case.headers = {**headers, "X-TOTP": totp(SECRET)}
