#!/usr/bin/env python3
"""Writes the bad-input corpus (run from this folder: `python3 generate.py`).

Each file holds one family of malformed input, one JSON object a line: the input and the
outcome the server must give (`tests/corpus.rs` sends each over a real socket). The outcomes
were reviewed by hand: regenerating keeps them, as they are written here beside each input.
"""
import base64
import json

OK_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade(path="/live", method="GET", version="HTTP/1.1", extra="", key=OK_KEY, ws_version="13",
            connection="Upgrade", upgrade_to="websocket"):
    head = f"{method} {path} {version}\r\nHost: x\r\n"
    if upgrade_to is not None:
        head += f"Upgrade: {upgrade_to}\r\n"
    if connection is not None:
        head += f"Connection: {connection}\r\n"
    if key is not None:
        head += f"Sec-WebSocket-Key: {key}\r\n"
    if ws_version is not None:
        head += f"Sec-WebSocket-Version: {ws_version}\r\n"
    return head + extra + "\r\n"


def handshake():
    out = []
    add = lambda expect, raw, why: out.append({"expect": expect, "why": why, "raw": raw})
    add("101", upgrade(), "the valid handshake, for reference")
    # Keys: one header, the base64 of 16 bytes.
    for key, why in [("", "empty key"), ("short", "short key"), ("A" * 2000, "2,000-character key"),
                     (f"{OK_KEY}, {OK_KEY}", "a list of keys"), (base64.b64encode(b"x" * 15).decode(), "15 bytes"),
                     (base64.b64encode(b"x" * 17).decode(), "17 bytes"), ("!!!!!!!!!!!!!!!!!!!!!!==", "not base64"),
                     (OK_KEY[:-2], "unpadded"), (OK_KEY.lower(), "case changed"), (" " * 24, "spaces"),
                     (OK_KEY + "=", "extra padding"), ("\t" + OK_KEY + "x", "trailing junk")]:
        add("400", upgrade(key=key), why)
    add("400", upgrade(key=None), "no key")
    add("400", upgrade(extra=f"Sec-WebSocket-Key: {OK_KEY}\r\n"), "two keys")
    # Versions: 13 only; another one is 426, none 400.
    for v in ["12", "8", "0", "14", "13, 8", "", "abc", "-13", "013", "13.0", "1" * 100]:
        add("426", upgrade(ws_version=v), f"version {v[:10]!r}")
    add("400", upgrade(ws_version=None), "no version")
    add("426", upgrade(extra="Sec-WebSocket-Version: 13\r\n"), "two version headers")
    # Upgrade and Connection.
    for u in ["websockets", "", "h2c", "WebSocket2", "web socket"]:
        add("400", upgrade(upgrade_to=u), f"Upgrade: {u!r}")
    for c in ["keep-alive", "", "close", "upgrades", "up grade"]:
        add("400", upgrade(connection=c), f"Connection: {c!r}")
    add("400", upgrade(connection=None), "no Connection")
    # Methods and versions.
    add("405", upgrade(method="OPTIONS"), "method OPTIONS")
    # An event may come by any method a Datastar action sends (POST, PUT, PATCH, DELETE, QUERY).
    for m in ["POST", "PUT", "DELETE", "PATCH", "QUERY"]:
        add("403", upgrade(method=m), f"{m}: an event for a stream, with no stream id")
    add("426", upgrade(version="HTTP/1.0"), "an HTTP/1.0 upgrade: WebSocket needs 1.1 (answered in HTTP/1.0)")
    add("400", upgrade(version="HTTP/9.9"), "HTTP/9.9")
    # Origins: scheme, host and port of the server's own.
    for o in ["https://x", "HTTP://x/", "evil://x", "null", "http://x:1", "http://y", "http://x.evil", "http://",
              "x", "http://user@x", "http://x/path", "http://x\\", "//x", "*", "http://127.0.0.1",
              "file://", "http://x:99999", "http://[::1]", "http://x.", "ws://x",
              "wss://x", "http://x:0", "http://x?q", "http://x#f", "http://x, http://x", "HTTP://x",
              "http://%78", "http:x", "https://x:443"]:
        add("403", upgrade(extra=f"Origin: {o}\r\n"), f"Origin {o!r}")
    # The same origin spelled otherwise: the default port, the host's case, whitespace around.
    for o in ["http://x:80", "http://X", "\thttp://x "]:
        add("101", upgrade(extra=f"Origin: {o}\r\n"), f"Origin {o!r}: the server's own")
    # Sizes: headers for a live endpoint, heads for the server, header counts.
    add("431", upgrade(extra=f"Cookie: {'c' * 17000}\r\n"), "17 KB of cookie on an upgrade")
    add("431", upgrade(extra=f"X-A: {'a' * 9000}\r\nX-B: {'b' * 9000}\r\n"), "two 9 KB headers")
    add("431", upgrade(extra=f"Cookie: {'c' * 40000}\r\n"), "a 40 KB head")
    add("431", upgrade(extra="".join(f"X-{i}: v\r\n" for i in range(120))), "120 headers")
    add("431", f"GET /live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nCookie: {'c' * 17000}\r\n\r\n",
        "17 KB of cookie on an event stream")
    add("431", f"GET /live?lh-poll=1 HTTP/1.1\r\nHost: x\r\nCookie: {'c' * 17000}\r\n\r\n",
        "17 KB of cookie on a long-poll open")
    add("431", f"GET /{'a' * 70000} HTTP/1.1\r\nHost: x\r\n\r\n", "a 70 KB path: a head over the limit")
    # Not HTTP, or broken HTTP.
    # Blank lines before a request are allowed (RFC 9112 2.2): waited for, then closed.
    add("closed", "\r\n\r\n\r\n", "blank lines and no request")
    # A relative path is taken as a path (hyper): nobody serves it.
    add("404", "GET live HTTP/1.1\r\nHost: x\r\n\r\n", "a path without its slash")
    # HTTP/2 is not spoken here (a proxy in front does): the preface is refused by closing.
    add("closed", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "an HTTP/2 preface")
    for raw, why in [("GARBAGE\r\n\r\n", "not a request line"),
                     ("GET\r\n\r\n", "method only"), ("GET /live\r\n\r\n", "no version (HTTP/0.9)"),
                     ("GET /live HTTP/1.1\r\nHost x\r\n\r\n", "header without a colon"),
                     ("GET /live HTTP/1.1\r\nHo st: x\r\n\r\n", "space in a header name"),
                     ("GET /live HTTP/1.1\r\nHost: x\x00y\r\n\r\n", "NUL in a header value"),
                     ("GET /live HTTP/1.1\r\n: x\r\n\r\n", "empty header name"),
                     ("GET /li ve HTTP/1.1\r\nHost: x\r\n\r\n", "space in the path"),
                     ("G\x01T /live HTTP/1.1\r\nHost: x\r\n\r\n", "control byte in the method"),
                     ("GET /live HTTP/1.1\nHost: x\n\x00\n\n", "NUL line"),
                     ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + "\x00" * 32 + "\r\n\r\n", "a TLS hello"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "negative length"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                      "two lengths"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                      "chunked and a length"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "length not a number"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n", "an obsolete folded line"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nX:\x7f\r\n\r\n", "DEL in a header value"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nX\x00Y: z\r\n\r\n", "NUL in a header name"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "an unknown transfer coding"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                      "a length beyond u64"),
                     ("GET  /live HTTP/1.1\r\nHost: x\r\n\r\n", "two spaces after the method"),
                     ("GET /live HTTP/1.1 extra\r\nHost: x\r\n\r\n", "junk after the version"),
                     ("GET /live HTTP/1.1\rHost: x\r\n\r\n", "a bare CR"),
                     ("GET /live\x00 HTTP/1.1\r\nHost: x\r\n\r\n", "NUL in the path"),
                     ("GET /live HTTP/1.1\r\nHost: x\r\n\x80\xff: v\r\n\r\n", "high bytes in a header name"),
                     ]:
        add("400", raw, why)
    add("404", "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "a path nobody serves")
    # Heads that never end: closed at the deadline, never answered.
    for raw, why in [("GET /live HTTP/1.1\r\nHost: x\r\n", "a head without its blank line"),
                     (upgrade()[:-2], "an upgrade without its blank line"), ("G", "one byte"), ("", "nothing")]:
        add("closed", raw, why)
    return out


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    if n < 126:
        head = bytes([first, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([first, (0x80 if mask else 0) | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code, reason=b""):
    return code.to_bytes(2, "big") + reason


def frames():
    out = []
    add = lambda expect, data, why: out.append({"expect": expect, "why": why, "hex": data.hex()})
    text = b'{"say":"x"}'
    add("echo", frame(1, text), "a valid text frame, for reference")
    add("1002", frame(1, text, mask=False), "an unmasked client frame")
    for rsv in (1, 2, 3, 4, 5, 6, 7):
        add("1002", frame(1, text, rsv=rsv), f"reserved bits {rsv:03b} without an extension")
    for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
        add("1002", frame(op, text), f"reserved opcode {op}")
    add("1002", frame(9, b"p" * 126), "a ping of 126 bytes")
    add("1002", frame(10, b"p" * 200), "a pong of 200 bytes")
    add("1002", frame(9, b"p", fin=False), "a fragmented ping")
    add("1002", frame(8, b"", fin=False), "a fragmented close")
    add("1002", frame(0, text), "a continuation with nothing to continue")
    add("1002", frame(1, b'{"say":', fin=False) + frame(1, b'"x"}'), "a new text inside a fragmented one")
    add("1002", frame(2, b"ab", fin=False) + frame(1, b"cd"), "a new text inside a fragmented binary")
    add("1002", frame(8, b"\x03"), "a close with a 1-byte payload")
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
        add("1002", frame(8, close_payload(code)), f"a close with code {code}")
    add("1007", frame(8, close_payload(1000, b"\xff\xfe")), "a close reason that is not UTF-8")
    for bad, why in [(b"\xff", "0xFF"), (b"\xc0\xaf", "an overlong slash"), (b"\xed\xa0\x80", "a surrogate"),
                     (b"\xf4\x90\x80\x80", "beyond U+10FFFF"), (b"abc\x80", "a lone continuation byte"),
                     (b"\xe2\x82", "a truncated sequence")]:
        add("1007", frame(1, bad), f"text that is not UTF-8: {why}")
    add("1007", frame(1, b"\xe2", fin=False) + frame(0, b"\x28\xa1"), "UTF-8 broken across fragments")
    add("1009", frame(1, b"x" * 5000), "a text over the 4 KiB limit")
    add("1009", frame(2, b"x" * 5000), "a binary over the limit")
    add("1009", frame(1, b"", length=2 ** 62), "a frame that announces 2^62 bytes")
    add("1009", frame(1, b"", length=2 ** 32), "a frame that announces 4 GiB")
    add("1009", frame(1, b"x" * 3000, fin=False) + frame(0, b"x" * 3000), "fragments that add up to over the limit")
    add("1009", frame(1, b"", length=2 ** 63 + 5), "a 64-bit length with its top bit set: too big")
    add("open", frame(9, b"ping"), "a ping: answered, the connection goes on")
    add("open", frame(10, b"unsolicited"), "an unsolicited pong")
    add("1008", frame(1, b""), "an empty text: not an event")
    add("1003", frame(2, b"\x00\x01binary"), "a binary message: not what a live endpoint takes")
    add("echo", frame(1, b'{"say":', fin=False) + frame(9, b"between") + frame(0, b'"x"}'),
        "a ping between fragments")
    add("echo", frame(1, b'{"s', fin=False) + frame(0, b'ay"', fin=False) + frame(0, b':"x"}'),
        "three fragments")
    for code in (1000, 1001, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4999):
        add(str(code), frame(8, close_payload(code, b"reason")), f"a close with code {code}: echoed")
    add("1002", frame(8, close_payload(1000, b"r" * 124)), "a close whose reason makes it 126 bytes")
    add("1008", frame(1, b"\xef\xbb\xbf{}"), "a byte-order mark before the JSON")
    add("1000", frame(8, close_payload(1000)), "a normal close: echoed")
    add("1005", frame(8, b""), "a close without a code: answered without one")
    add("1001", frame(8, close_payload(1001, b"bye")), "going away: echoed")
    add("4000", frame(8, close_payload(4000)), "an application code: echoed")
    return out


def events():
    out = []
    add = lambda expect, text, why: out.append({"expect": expect, "why": why, "text": text})
    add("echo", '{"say":"x"}', "a valid htmx event, for reference")
    # Not an event: the page is closed with 1008 (a page that speaks the protocol never sends these).
    for text, why in [("hello", "plain text"), ("", "empty"), ("null", "null"), ("[]", "an array"),
                      ("[1,2,3]", "an array of numbers"), ("42", "a number"), ('"say"', "a string"),
                      ("true", "a boolean"), ("{", "an open brace"), ("}", "a close brace"),
                      ('{"say":"x"', "unclosed object"), ('{"say":x}', "a bare word"),
                      ('{"say":"\\x"}', "an invalid escape"), ('{"say":"\\u12"}', "a short unicode escape"),
                      ('{"say":"x",}', "a trailing comma"), ("{'say':'x'}", "single quotes"),
                      ('{"say":"x"}{"say":"y"}', "two objects"), ('{"say":"x"} trailing', "trailing text"),
                      ('{"a":{"b":{"c":{"d":{"e":1}}}}}', "nested beyond the depth limit"),
                      ('{"a":' * 64 + "1" + "}" * 64, "64 levels deep"),
                      ('[' * 1000 + ']' * 1000, "1,000 nested arrays"),
                      ('{"say":1e999}', "a number out of range"),
                      ('{"HEADERS":"not an object"}', "HEADERS not an object"),
                      ('{"HEADERS":{"HX-Trigger":{"a":1}}}', "a header that is an object"),
                      ('{"say":"\\ud800"}', "a lone surrogate escape"),
                      ('{"say":{"nested":"x"}}', "an object as a value"),
                      ('{"lh":"event","event":"say","values":{"say":"x"}}', "values nested in an object"),
                      ('{"say":"x"}\x00', "a NUL after the object"),
                      ("\t", "a tab"), ("{}}", "one brace too many"), ('{"say":"x"\n', "a newline, unclosed"),
                      ('{"say":"\x01"}', "a raw control character in a string"),
                      ('{"say":+1}', "a plus sign"), ('{"say":.5}', "a bare fraction"), ('{"say":0x10}', "hex"),
                      ('{"say":NaN}', "NaN"), ('{"say":Infinity}', "Infinity"), ('{say:"x"}', "an unquoted key"),
                      ('{"say":"x"/*c*/}', "a comment"),
                      ]:
        add("1008", text, why)
    add("1009", "{" + ",".join(f'"f{i}":"v"' for i in range(1100)) + "}", "1,100 fields (over 4 KiB)")
    # Valid JSON the session does not know: handled like any event (values it lacks are empty).
    for text, why in [('{"lh":"no-such-control"}', "an unknown control message"),
                      ('{"lh":42}', "a control name that is a number"),
                      ('{"\\u0000":"x"}', "a NUL field name"), ("{}", "an empty object"), ('{"lh":"event"}', "a control word as a value"),
                      ('{"":""}', "an empty field name"), ('{"HEADERS":{}}', "empty headers"),
                      ('{"HEADERS":{"HX-Trigger":null}}', "a null header")]:
        add("echo", text, why)
    # Valid JSON with odd values: handled, escaped (the test's echo escapes what it sends back).
    for text, why in [('{"say":"<script>alert(1)</script>"}', "markup in a value"),
                      ('{"say":"' + "é" * 100 + '"}', "non-ASCII"),
                      ('{"say":"x","say":"y"}', "a field twice"),
                      ('{"say":["a","b"]}', "an array value"),
                      ('{"say":null}', "a null value"),
                      ('{"say":12345678901234567890}', "a big integer"),
                      ('{"say":"x","HEADERS":{"HX-Trigger":"f","HX-Current-URL":"javascript:alert(1)"}}',
                       "a script URL as the current URL"),
                      ('{"lh":"nav","url":"javascript:alert(1)"}', "navigation outside a view"),
                      (' {"say":"x"} ', "whitespace around"),
                      ]:
        add("echo", text, why)
    return out


def posts():
    out = []
    add = lambda expect, why, **kw: out.append({"expect": expect, "why": why, **kw})
    add("204", "a valid event for the stream, for reference", stream="valid", body='{"say":"x"}')
    for stream, why in [("none", "no stream id"), ("junk", "an id that is not one"), ("truncated", "a cut id"),
                        ("flipped", "an id with a byte changed"), ("empty", "an empty id"),
                        ("otherkey", "an id signed by another key"),
                        ("long", "a 10 KB id")]:
        add("403", why, stream=stream, body='{"say":"x"}')
    add("204", "a long-poll session's id: its events are posted the same way", stream="pollprefix",
        body='{"say":"x"}')
    add("403", "a valid stream from a foreign origin", stream="valid", body='{"say":"x"}',
        headers={"Origin": "http://evil.example"})
    add("413", "a body over the 4 KiB limit", stream="valid", body='{"say":"' + "x" * 5000 + '"}')
    for body, why in [("not json", "a body that is not JSON"), ("[1]", "an array"), ("", "an empty body"),
                      ('{"a":{"b":{"c":{"d":{"e":1}}}}}', "too deep"), ("\xff\xfe", "not UTF-8")]:
        add("400", why, stream="valid", body=body)
    add("400", "Datastar signals that are not an object", stream="valid", body="[1,2]",
        headers={"Datastar-Request": "true"})
    add("400", "Datastar signals that are not JSON", stream="valid", body="{",
        headers={"Datastar-Request": "true"})
    add("204", "a form post", stream="valid", body="say=x&other=%ZZ",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    add("204", "a form that is not UTF-8: decoded with replacement characters", stream="valid", body="say=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    add("410", "a stream that has ended", stream="ended", body='{"say":"x"}')
    return out


def polls():
    out = []
    add = lambda expect, query, why: out.append({"expect": expect, "why": why, "query": query})
    add("200", "lh-poll=1", "a long-poll session opens, for reference")
    for q, why in [("lh-poll=junk", "a junk id"), ("lh-poll=", "an empty id"), ("lh-poll=0", "zero"),
                   ("lh-poll=" + "a" * 5000, "a 5 KB id"), ("lh-poll=%00", "a NUL"),
                   ("lh-poll=%FF%FE", "not UTF-8"), ("lh-poll=2", "two"), ("lh-poll=junk&lh-ack=5", "junk with an ack"),
                   ("lh-poll=junk&lh-ack=-1", "a negative ack"), 
                   ("lh-poll=valid-cut", "a cut id"), ("lh-poll=valid-flipped", "an id with a byte changed"),
                   ]:
        add("403", q, why)
    add("200", "lh-poll=junk&lh-poll=1", "two ids: the last one counts")
    add("410", "lh-poll=stream-id", "an SSE stream's id: no such long-poll session")
    for q, why in [("lh-poll=valid&lh-ack=abc", "an ack that is not a number"),
                   ("lh-poll=valid&lh-ack=99999999999999999999", "an ack beyond u64"),
                   ("lh-poll=valid&lh-ack=18446744073709551615", "the largest ack"),
                   ("lh-poll=valid&lh-ack=", "an empty ack")]:
        add("200", q, why)
    return out


def tokens():
    out = []
    add = lambda token, why: out.append({"expect": "4002", "why": why, "token": token})
    for token, why in [("", "empty"), ("junk", "junk"), (".", "a dot"), ("a.b", "two parts"),
                       ("v2.1.2.3.4.5", "unsigned fields"), ("v2." * 50, "many dots"), ("\x00", "a NUL"),
                       ("valid-cut", "a cut token"), ("valid-flipped", "a token with a byte changed"),
                       ("valid-otherkey", "signed by another key"), ("valid-doubled", "a token twice"),
                       ("valid-spaced", "a token with a space"), ("x" * 6000, "6 KB"),
                       ("v2.9999999999.0.0.L2NvdW50ZXI.AAAA", "a forged body with a junk tag"),
                       ("v1.1.2.3.4.5", "an old version"),
                       ("valid-future", "signed with the key, issued ten years ahead (the probe's finding)"),
                       ("valid-old", "signed with the key, issued in 1970: past its age"),
                       ("valid-nowhere", "signed with the key, for a path no view serves"),
                       ("valid-script", "signed with the key, for javascript:alert(1)")]:
        add(token, why)
    # The control: a token signed the same way and valid joins (so the four above are refused
    # for what they say, not for how the test signs them); the probe, an event the view does not
    # know, gets no text with the probe in it, and the connection stays open: `joined`.
    out.append({"expect": "joined", "why": "signed with the key, valid: joins", "token": "valid-now"})
    return out


for name, make in [("handshake", handshake), ("frames", frames), ("events", events), ("posts", posts),
                   ("polls", polls), ("tokens", tokens)]:
    rows = make()
    with open(f"{name}.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")
    print(name, len(rows))
