"""schemathesis hooks for mailrig's API: how to send a TOML fault rule.

The schema gives the TOML body as a string; it goes on the wire as UTF-8
text under the media type the operation declares (application/toml).
text/toml needs nothing: schemathesis sends any text/* type as text.

And one guard for the test generator itself: with `--workers 2`, hypothesis
parses source files (lambda descriptions) in both worker threads at once,
and CPython 3.11 keeps the AST constructor's recursion counter in state the
threads share, so a parse now and then fails with "AST constructor
recursion depth mismatch" (cpython gh-106905; seen in this test under load,
a runtime error of the generator, not a finding about the API). Parses are
made one at a time.
"""

import ast
import threading

import schemathesis

_parse_lock = threading.Lock()
_parse = ast.parse


def _one_parse_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _one_parse_at_a_time


@schemathesis.serializer("application/toml")
def toml_as_text(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": str(value).encode("utf-8")}
