#!/usr/bin/python3
"""A real browser against http:// endpoints (issue 24): headless Chromium
loads a page from another origin, which POSTs with fetch (with a header
that makes the browser send a CORS preflight) and talks over a WebSocket,
then the answers are read from the DOM. A service whose http_allow_origin
lists the page's origin answers both; one that does not is kept from the
page: the browser refuses to hand fetch's reply over, and morphd refuses
the WebSocket handshake (403).

usage: browser_test.py MORPHD PLUGIN_DIR
"""
import functools
import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

MORPHD, PLUGIN_DIR = (os.path.abspath(a) for a in sys.argv[1:3])
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


PAGE = """<!doctype html>
<html><body>
<p id="fetch-open">pending</p><p id="ws-open">pending</p>
<p id="fetch-closed">pending</p><p id="ws-closed">pending</p>
<script>
function show(id, text) { document.getElementById(id).textContent = text; }
function call(id, port, body) {
  fetch("http://127.0.0.1:" + port + "/", {method: "POST", body: body,
        headers: {"Content-Type": "text/plain", "X-From": "page"}})
    .then(r => r.text()).then(t => show("fetch-" + id, "fetch:" + t))
    .catch(e => show("fetch-" + id, "fetch refused"));
  const ws = new WebSocket("ws://127.0.0.1:" + port + "/live");
  ws.onopen = () => ws.send(body + " over a websocket");
  ws.onmessage = e => { show("ws-" + id, "ws:" + e.data); ws.close(); };
  ws.onerror = () => show("ws-" + id, "ws refused");
}
call("open", %(open)d, "from the page");
call("closed", %(closed)d, "from the page");
</script></body></html>
"""


def main():
    work = tempfile.mkdtemp(prefix="morph-browser-")
    # the page's own server: its origin is http://127.0.0.1:PAGE_PORT
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=work)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    pages = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    page_port = pages.server_address[1]
    threading.Thread(target=pages.serve_forever, daemon=True).start()

    ini = os.path.join(work, "morphd.ini")
    with open(ini, "w") as f:
        f.write("""[morphd]
plugin_dir = %s
allow_root = yes

[service open]
listen = http://127.0.0.1:0
transform = uppercase
http_allow_origin = http://127.0.0.1:%d

[service closed]
listen = http://127.0.0.1:0
transform = uppercase
""" % (PLUGIN_DIR, page_port))
    log_path = os.path.join(work, "morphd.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([MORPHD, "-c", ini], stderr=log)
    try:
        ports = {}
        for _ in range(100):
            text = open(log_path).read()
            for name in ("open", "closed"):
                m = re.search(r"service %s: listening on http://127\.0\.0\.1:(\d+)"
                              % name, text)
                if m:
                    ports[name] = int(m.group(1))
            if len(ports) == 2:
                break
            time.sleep(0.1)
        check(len(ports) == 2, "morphd did not say where it listens:\n" +
              open(log_path).read())
        if len(ports) != 2:
            return
        with open(os.path.join(work, "index.html"), "w") as f:
            f.write(PAGE % ports)
        dom = ""
        for attempt in range(3):  # a slow first start of Chromium
            p = subprocess.run(["chromium", "--headless=new", "--no-sandbox",
                                "--disable-gpu", "--no-first-run",
                                "--virtual-time-budget=5000", "--dump-dom",
                                "http://127.0.0.1:%d/index.html" % page_port],
                               capture_output=True, timeout=90)
            dom = p.stdout.decode()
            if "pending" not in dom:
                break
        got = dict(re.findall(r'<p id="([a-z-]+)">([^<]*)</p>', dom))
        print(got, flush=True)
        check(got.get("fetch-open") == "fetch:FROM THE PAGE",
              "fetch to a service that allows the page: %r" % got.get("fetch-open"))
        check(got.get("ws-open") == "ws:FROM THE PAGE OVER A WEBSOCKET",
              "a WebSocket to it: %r" % got.get("ws-open"))
        check(got.get("fetch-closed") == "fetch refused",
              "fetch to a service that does not allow the page: %r"
              % got.get("fetch-closed"))
        check(got.get("ws-closed") == "ws refused",
              "a WebSocket to it: %r" % got.get("ws-closed"))
        text = open(log_path).read()
        check("403: a WebSocket handshake from an origin" in text or
              "answered 403" in text,
              "morphd did not log the refused handshake:\n" + text)
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
        check(rc == 0, "morphd exited %d" % rc)
        pages.shutdown()
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("ok")


main()
