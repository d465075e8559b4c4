#!/usr/bin/env python3
"""Builds fuzz/corpus/<target>/seed-* from the repository's own tests and test
data: the raw-protocol tests (crates/mailrig-server/tests/*_raw.rs), the
scenario and target files (testdata/), the fault rules of the control-API tests
and of the scenarios. Run from anywhere: python3 fuzz/seed-corpus.py
Stream targets get the header of mailrig_fuzz_checks::split (flags, 0 cuts)."""
import json, pathlib, re, tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
STR = r'"((?:[^"\\]|\\.)*)"'


def unescape(s: str) -> bytes:
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2:i + 4], 16)); i += 4; continue
            if n == "\n":  # line continuation
                i += 2
                while i < len(s) and s[i] in " \t\n": i += 1
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}.get(n, n.encode())
            i += 2; continue
        out += c.encode(); i += 1
    return bytes(out)


def transcripts(path: pathlib.Path):
    """(test name, client bytes) for every test function, in call order."""
    src = path.read_text()
    parts = re.split(r"\n(?:#\[tokio::test[^\]]*\]\s*)?async fn (\w+)", src)
    for name, body in zip(parts[1::2], parts[2::2]):
        pat = re.compile(r"\.cmd\(\s*" + STR + r"|\.send\(\s*b" + STR +
                         r"|\.send_mail\(\s*" + STR + r",\s*&\[([^\]]*)\],\s*" + STR, re.S)
        stream = bytearray()
        for m in pat.finditer(body):
            if m.group(1) is not None:
                stream += unescape(m.group(1)) + b"\r\n"
            elif m.group(2) is not None:
                stream += unescape(m.group(2))
            else:
                stream += b"MAIL FROM:<" + unescape(m.group(3)) + b">\r\n"
                for to in re.findall(STR, m.group(4)):
                    stream += b"RCPT TO:<" + unescape(to) + b">\r\n"
                stream += b"DATA\r\n" + unescape(m.group(5)) + b"\r\n.\r\n"
        if stream:
            yield name, bytes(stream)


def write(target: str, name: str, data: bytes):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def main():
    tests = ROOT / "crates" / "mailrig-server" / "tests"
    for proto in ["smtp", "imap", "pop3"]:
        for name, stream in transcripts(tests / f"{proto}_raw.rs"):
            write(f"{proto}_session", name, bytes([0, 0]) + stream)
            if proto == "smtp":
                # the same with bare_lf = "reject" and with fault rules
                write("smtp_session", name + "-reject-faults", bytes([3, 0]) + stream)
                for i, body in enumerate(re.findall(rb"DATA\r\n(.*?\r\n\.\r\n)", stream, re.S)):
                    write("smtp_data", f"{name}-{i}", bytes([0, 0]) + body)
                    write("smtp_data", f"{name}-{i}-reject", bytes([1, 0]) + body)
    for name, body in {
        "unit-unstuff": b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
        "unit-bare-lf": b"a\nb\r\n.\r\n",
        "unit-smuggle": b"a\r\n.\nMAIL FROM:<x>\r\n.\r\n",
        "unit-dot-cr": b".\rx\r\n.\r\n",
        "unit-long-line": b"x" * 1100 + b"\r\n.\r\n",
    }.items():
        write("smtp_data", name, bytes([0, 0]) + body)
        write("smtp_data", name + "-reject-small", bytes([3, 0]) + body)
    for f in sorted((ROOT / "testdata" / "scenarios").glob("*.toml")):
        write("scenario_toml", f.stem, f.read_bytes())
        for i, rule in enumerate(tomllib.loads(f.read_text()).get("fault", [])):
            write("fault_json", f"{f.stem}-{i}", json.dumps(rule).encode())
    for f in sorted((ROOT / "testdata" / "targets").glob("*.toml")):
        write("target_toml", f.stem, f.read_bytes())
    bad = (ROOT / "crates" / "mailrig-probe" / "tests" / "bad_input.rs").read_text()
    for i, s in enumerate(re.findall(STR, bad)):
        if "[smtp]" in s or "[read]" in s:
            write("target_toml", f"bad-input-{i}", unescape(s))
    api = (tests / "fault_api.rs").read_text()
    for i, s in enumerate(re.findall(r'r#"(.*?)"#', api, re.S)):
        if '"stage"' in s or '"action"' in s:
            write("fault_json", f"fault-api-{i}", s.encode())


main()
