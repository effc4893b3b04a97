"""A client of XAPI's thin CLI protocol written byte by byte from
ocaml/xe-cli/newcli.ml and ocaml/xapi-cli-protocol/cli_protocol.ml, as
the xe that ships with XenServer/XCP-ng speaks it: POST /cli with the
words one a line (username=, password= last), the version handshake,
then the server's commands (Print, PrintStderr, Debug, Load, HttpGet,
HttpPut, HttpConnect, Prompt, Error, Exit) answered as newcli does."""

import os
import socket
import struct

PREFIX = b"XenSource thin CLI protocol"


def i32(n):
    return struct.pack("<i", n)


def msg(payload):
    return i32(len(payload)) + payload


OK = msg(i32(10) + i32(5))
FAILED = msg(i32(10) + i32(6))
WAIT = msg(i32(10) + i32(18))
END = msg(i32(11) + i32(8))


def chunk(n):
    return msg(i32(11) + i32(7) + i32(n))


class Reader:
    def __init__(self, sock):
        self.sock = sock

    def exact(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise EOFError("connection closed after %d of %d bytes: %r"
                               % (len(out), n, out))
            out += b
        return out


def _str(p, at):
    n = struct.unpack_from("<i", p, at)[0]
    return p[at + 4:at + 4 + n].decode("utf-8", "replace"), at + 4 + n


def decode(p):
    """(name, args) of a server command payload."""
    kind, tag = struct.unpack_from("<ii", p, 0)
    assert kind == 9, "not a command: %r" % p
    if tag in (0, 1, 15, 16, 17):
        s, _ = _str(p, 8)
        return {0: "Print", 1: "Load", 15: "Debug", 16: "PrintStderr",
                17: "HttpConnect"}[tag], [s]
    if tag in (12, 13):
        a, at = _str(p, 8)
        b, _ = _str(p, at)
        return {12: "HttpGet", 13: "HttpPut"}[tag], [a, b]
    if tag == 3:
        return "Prompt", []
    if tag == 4:
        return "Exit", [struct.unpack_from("<i", p, 8)[0]]
    if tag == 14:
        code, at = _str(p, 8)
        n = struct.unpack_from("<i", p, at)[0]
        at += 4
        params = []
        for _ in range(n):
            s, at = _str(p, at)
            params.append(s)
        return "Error", [code, params]
    raise AssertionError("unknown command tag %d" % tag)


class Result:
    def __init__(self):
        self.out = ""
        self.err = ""
        self.code = None
        self.commands = []
        self.debug = []


def run(connect, http_port, words=(), user="root", password="null",
        stdin_lines=(), major=0, body=None, permitted=None):
    """Run one command; connect() gives a connected socket to the
    server's /cli listener, http_port the TCP port HttpGet/HttpPut go to
    (newcli: 80 or -p, never the unix socket)."""
    sock = connect()
    if body is None:
        body = "\n".join(list(words) + ["username=" + user,
                                         "password=" + password])
    body = body.encode()
    sock.sendall(b"POST /cli HTTP/1.0\r\nUser-agent: xe-cli/Unix/0.2\r\n"
                 b"originator: cli\r\ncontent-length: %d\r\n\r\n"
                 % len(body) + body)
    r = Reader(sock)
    res = Result()
    hello = r.exact(len(PREFIX) + 8)
    assert hello[:len(PREFIX)] == PREFIX, "not a CLI server: %r" % hello
    res.server_version = struct.unpack_from("<ii", hello, len(PREFIX))
    sock.sendall(PREFIX + i32(major) + i32(2))
    # newcli permits files named on the command line only
    if permitted is None:
        permitted = [os.path.abspath(w.split("=", 1)[1]) for w in words
                     if "=" in w and w.split("=", 1)[1].strip()]
    lines = list(stdin_lines)
    while res.code is None:
        n = struct.unpack("<i", r.exact(4))[0]
        name, args = decode(r.exact(n))
        res.commands.append((name, args))
        if name == "Print":
            res.out += args[0] + "\n"
        elif name == "PrintStderr":
            res.err += args[0]
        elif name == "Debug":
            # newcli --debug: "debug from server: <text>" on stderr
            res.debug.append(args[0])
        elif name == "Error":
            res.err += "Error code: %s\n" % args[0]
            res.err += "Error parameters: %s\n" % ", ".join(args[1])
        elif name == "Exit":
            res.code = args[0]
        elif name == "Prompt":
            data = lines.pop(0).encode() if lines else b""
            sock.sendall(chunk(len(data)) + data + END)
        elif name == "Load":
            path = args[0]
            assert os.path.abspath(path) in permitted, path
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                sock.sendall(FAILED)
                continue
            sock.sendall(OK + chunk(len(data)) + data + END)
        elif name == "HttpConnect":
            res.console = b""
            ok = console(args[0], http_port, res)
            sock.sendall(OK if ok else FAILED)
        elif name in ("HttpGet", "HttpPut"):
            sock.sendall(OK if transfer(name, args[0], args[1], http_port,
                                        permitted) else FAILED)
        else:
            raise AssertionError("unexpected %s" % name)
    sock.close()
    return res


def console(url, port, res):
    """newcli's HttpConnect, the user typing nothing: CONNECT, the 200,
    then what the console says for a moment (into res.console)."""
    assert url.startswith("/"), url
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(b"CONNECT %s HTTP/1.0\r\ncontent-length: 0\r\n\r\n"
                  % url.encode())
        head = read_head(s)
        res.console_status = head.split(b"\r\n")[0]
        if b" 200" not in res.console_status:
            return False
        s.settimeout(1)
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                res.console += b
        except socket.timeout:
            pass
        return True
    finally:
        s.close()


def transfer(kind, filename, url, port, permitted):
    """newcli's HttpGet/HttpPut: HTTP/1.0 to the server, the status line
    read before any body; True when the copy was done."""
    assert url.startswith("/"), url
    assert os.path.abspath(filename) in permitted, filename
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        if kind == "HttpPut":
            if not os.path.exists(filename):
                return False
            size = os.path.getsize(filename)
            s.sendall(b"PUT %s HTTP/1.0\r\nContent-length: %d\r\n\r\n"
                      % (url.encode(), size))
            head = read_head(s)
            if not head.startswith(b"HTTP/1.1 200") and \
                    not head.startswith(b"HTTP/1.0 200"):
                return False
            with open(filename, "rb") as f:
                while True:
                    b = f.read(65536)
                    if not b:
                        break
                    s.sendall(b)
            return True
        s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % url.encode())
        head = read_head(s)
        if b" 200 " not in head.split(b"\r\n")[0] + b" ":
            return False
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                f.write(b)
        return True
    finally:
        s.close()


def read_head(s):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        b = s.recv(1)
        if not b:
            break
        head += b
    return head
