"""schemathesis hooks for mailrig's API: how to send a TOML fault rule.

The schema gives the TOML body as a string; it goes on the wire as UTF-8
text under the media type the operation declares (application/toml).
text/toml needs nothing: schemathesis sends any text/* type as text.
"""

import schemathesis


@schemathesis.serializer("application/toml")
def toml_as_text(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": str(value).encode("utf-8")}
