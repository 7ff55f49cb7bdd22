#!/usr/bin/python3
"""The clients of `make test-scale` (tests/scale/scale_test.sh).

  client.py run HOST PORT SRC SECONDS THREADS OUT
      THREADS clients, each opening a new TCP connection from source address
      SRC after the other for SECONDS: one line, its uppercase reply, close,
      and 10 ms of rest (a few hundred connections a second in all: each
      leaves a socket in TIME_WAIT for a minute, and a loopback address has
      some 28,000 ports to give per destination).
      Writes one line per connection to OUT: "START_NS ok" or
      "START_NS fail REASON", START_NS being CLOCK_MONOTONIC nanoseconds at
      its connect(), the clock `date` cannot give but `now` below can.
  client.py now
      prints CLOCK_MONOTONIC in nanoseconds.
  client.py whoami HOST PORT SRC
      one line over a connection from SRC; prints "LOCALPORT REPLY".
  client.py udp HOST PORT COUNT
      COUNT datagrams, one at a time; prints how many got their uppercase
      reply.
"""
import socket
import sys
import threading
import time


def one(host, port, src, n):
    msg = "scale %d\n" % n
    with socket.create_connection((host, port), timeout=5,
                                  source_address=(src, 0)) as s:
        s.sendall(msg.encode())
        got = b""
        while not got.endswith(b"\n"):
            part = s.recv(4096)
            if not part:
                raise ConnectionError("closed after %r" % got)
            got += part
    if got.decode() != msg.upper():
        raise ValueError("reply %r to %r" % (got, msg))


def run(host, port, src, seconds, threads, out):
    results = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker(k):
        n = 0
        while time.monotonic() < end:
            t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            try:
                one(host, port, src, k * 1000000 + n)
                r = "%d ok" % t0
            except Exception as e:  # any failure is a lost connection
                r = "%d fail %s" % (t0, str(e).replace("\n", " "))
            with lock:
                results.append(r)
            n += 1
            time.sleep(0.01)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(out, "w") as f:
        f.write("\n".join(results) + "\n")


def whoami(host, port, src):
    with socket.create_connection((host, port), timeout=5,
                                  source_address=(src, 0)) as s:
        local = s.getsockname()[1]
        s.sendall(b"x\n")
        got = b""
        while not got.endswith(b"\n"):
            part = s.recv(4096)
            if not part:
                break
            got += part
    print(local, got.decode().strip())


def udp(host, port, count):
    ok = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for n in range(count):
            msg = b"datagram %d" % n
            s.sendto(msg, (host, port))
            try:
                data, _ = s.recvfrom(2048)
                ok += data == msg.upper()
            except socket.timeout:
                pass
    print(ok)


def main(argv):
    cmd = argv[1]
    if cmd == "run":
        run(argv[2], int(argv[3]), argv[4], float(argv[5]), int(argv[6]),
            argv[7])
    elif cmd == "now":
        print(time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    elif cmd == "whoami":
        whoami(argv[2], int(argv[3]), argv[4])
    elif cmd == "udp":
        udp(argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
