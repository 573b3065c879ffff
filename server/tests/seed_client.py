#!/usr/bin/env python3
"""A client of the original ("seed") ferry protocol, standard library only.

The protocol, exactly as the original Python clients speak it:

1. connect, and send in one message the file size as 8 bytes big-endian followed by the file
   name in UTF-8 (no length, no terminator);
2. wait for the server's 8 bytes ``go ahead``;
3. send exactly ``size`` bytes in chunks, and close. There is no reply and no checksum.

``upload`` below is that client. The rest runs many uploads at once for ferryd's tests, some
deliberately broken, from a jobs file with one tab-separated line per upload:

    name <TAB> path of the content <TAB> declared size or - <TAB> bytes to send before
    stopping or - <TAB> mode

where mode is ``plain``; ``trickle`` (the header in small pieces, a little apart, as a slow
network would deliver it); ``close`` (stop after the given bytes and close); or ``reset``
(stop after the given bytes and abort the connection). All uploads start together; one line
per job is printed, in job order: ``<index> <outcome>`` with outcome ``sent`` (got
``go ahead`` and sent what it meant to), ``refused`` (closed without ``go ahead``),
``send-failed`` (got ``go ahead`` but the server closed during the data) or ``error ...``.

Usage: seed_client.py HOST:PORT JOBS_FILE
"""

import socket
import struct
import sys
import threading
import time

GO_AHEAD = b"go ahead"
CHUNK = 1024


def recv_exactly(sock, count):
    """Reads count bytes, or fewer if the server closes first."""
    data = b""
    while len(data) < count:
        try:
            piece = sock.recv(count - len(data))
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    return data


def upload(host, port, name, content, declared=None, stop_after=None, mode="plain"):
    """Uploads content under name with the original protocol; returns the outcome."""
    size = len(content) if declared is None else declared
    header = struct.pack(">Q", size) + name.encode("utf-8")
    sock = socket.create_connection((host, port), timeout=30)
    try:
        if mode == "trickle":
            for start in range(0, len(header), 3):
                sock.sendall(header[start:start + 3])
                time.sleep(0.02)
        else:
            sock.sendall(header)
        if recv_exactly(sock, len(GO_AHEAD)) != GO_AHEAD:
            return "refused"
        to_send = content if stop_after is None else content[:stop_after]
        try:
            for start in range(0, len(to_send), CHUNK):
                sock.sendall(to_send[start:start + CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            return "send-failed"
        if mode == "reset":
            # SO_LINGER with a zero timeout: close() sends RST, as a killed client's OS might.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return "sent"
    finally:
        sock.close()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    jobs = []
    with open(sys.argv[2], encoding="utf-8") as lines:
        for line in lines:
            name, path, declared, stop_after, mode = line.rstrip("\n").split("\t")
            with open(path, "rb") as source:
                content = source.read()
            jobs.append((
                name,
                content,
                None if declared == "-" else int(declared),
                None if stop_after == "-" else int(stop_after),
                mode,
            ))
    outcomes = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(index, job):
        try:
            start.wait()
            outcomes[index] = upload(host, int(port), *job)
        except Exception as error:  # reported, never hidden
            outcomes[index] = "error " + repr(error)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, outcome in enumerate(outcomes):
        print(index, outcome)


if __name__ == "__main__":
    main()
