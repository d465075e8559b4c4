"""Sends mail with Python's smtplib as a user's program would, and reports what
it saw as JSON: reply codes per step, or the error that ended the session.

argv[1] is a JSON object: port, host (default 127.0.0.1), timeout (s),
starttls / smtps (bool), cafile, user + password (AUTH), ehlo (name), and
messages: [{from, options (MAIL parameters), to: [...], data}] sent over one connection.
"""
import json
import smtplib
import socket
import ssl
import sys
import time

a = json.loads(sys.argv[1])
host = a.get("host", "127.0.0.1")
timeout = a.get("timeout", 10)
res = {"greeting": None, "ehlo": None, "starttls": None, "login": None,
       "messages": [], "error": None, "esmtp_features": None}


def err(e):
    name = type(e).__name__
    if isinstance(e, smtplib.SMTPResponseException):
        return "%s %d %s" % (name, e.smtp_code, e.smtp_error.decode(errors="replace"))
    return "%s: %s" % (name, e)


def context():
    ctx = ssl.create_default_context(cafile=a.get("cafile"))
    return ctx


s = None
t0 = time.monotonic()
try:
    if a.get("smtps"):
        s = smtplib.SMTP_SSL(host, a["port"], timeout=timeout, context=context())
    else:
        s = smtplib.SMTP(host, a["port"], timeout=timeout)
    res["greeting"] = 220
    res["greeting_secs"] = time.monotonic() - t0
    code, _ = s.ehlo(a.get("ehlo", "client.extern.test"))
    res["ehlo"] = code
    res["esmtp_features"] = sorted(s.esmtp_features.keys())
    if a.get("starttls"):
        code, _ = s.starttls(context=context())
        res["starttls"] = code
        s.ehlo(a.get("ehlo", "client.extern.test"))
    if a.get("user"):
        code, _ = s.login(a["user"], a["password"])
        res["login"] = code
    for m in a.get("messages", []):
        r = {"mail": None, "rcpt": [], "data": None, "error": None}
        t1 = time.monotonic()
        res["messages"].append(r)
        try:
            code, _ = s.mail(m["from"], m.get("options", []))
            r["mail"] = code
            if code != 250:
                s.rset()
                continue
            ok = 0
            for to in m["to"]:
                code, text = s.rcpt(to)
                r["rcpt"].append(code)
                r.setdefault("rcpt_text", []).append(text.decode(errors="replace"))
                ok += code == 250
            if ok == 0:
                s.rset()
                continue
            code, text = s.data(m["data"].encode())
            r["data"] = code
            r["data_text"] = text.decode(errors="replace")
            r["secs"] = time.monotonic() - t1
        except smtplib.SMTPConnectError:
            raise
        except smtplib.SMTPServerDisconnected as e:
            r["error"] = err(e)
            s = None
            break
        except smtplib.SMTPException as e:
            r["error"] = err(e)
            if isinstance(e, smtplib.SMTPResponseException) and e.smtp_code == 421:
                s = None
                break
            try:
                s.rset()
            except Exception:
                s = None
                break
        except OSError as e:
            r["error"] = err(e)
            s = None
            break
    if s is not None:
        try:
            s.quit()
        except Exception:
            pass
except smtplib.SMTPConnectError as e:
    res["greeting"] = e.smtp_code
    res["error"] = err(e)
except smtplib.SMTPAuthenticationError as e:
    res["login"] = e.smtp_code
    res["error"] = err(e)
except Exception as e:
    res["error"] = err(e)
res["secs"] = time.monotonic() - t0
print(json.dumps(res))
