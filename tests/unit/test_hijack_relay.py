"""The Engine API's attach and exec relays over socket pairs (no container, no root): Docker's 8-byte
frames, the raw bytes of a TTY, stdin with the detach keys held back, the half-close that closes a
StdinOnce container's input, the exit frame that ends the stream; and when the monitor's launch
runs in a fresh interpreter (a threaded caller)."""

from __future__ import annotations

import os
import socket
import threading

from skiff.engine.monitor.idle import frame, split_frames
from skiff.engine.monitor import launch
from skiff.engine.terminal import multiplexed_frame, relay_client, relay_process


def _read_frames(sock: socket.socket) -> list[tuple[bytes, bytes]]:
    buffer = bytearray()
    while chunk := sock.recv(65536):
        buffer += chunk
    return split_frames(buffer)


def test_multiplexed_frame_is_dockers_stdcopy_header() -> None:
    assert multiplexed_frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert multiplexed_frame(2, b"x" * 258)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x02"


def test_attach_relay_frames_output_passes_input_and_closes_stdin_once() -> None:
    monitor, monitor_end = socket.socketpair()
    client, client_end = socket.socketpair()
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=relay_client(monitor, client, b"early ", False, True,
                                                                          b"\x10\x11", True)))
    worker.start()
    client_end.sendall(b"typed\x10x")  # a prefix of the keys that turns out not to be them is passed on
    client_end.shutdown(socket.SHUT_WR)
    expected = frame(b"0", b"early ") + frame(b"0", b"typed\x10x") + frame(b"c", b"")
    received = b""
    monitor_end.settimeout(10)
    while len(received) < len(expected):
        received += monitor_end.recv(100)
    assert received == expected
    monitor_end.sendall(frame(b"1", b"out") + frame(b"2", b"err") + frame(b"x", b"3"))
    worker.join(10)
    assert result["r"].status == 3 and not result["r"].detached
    assert client_end.recv(100) == multiplexed_frame(1, b"out") + multiplexed_frame(2, b"err")
    for sock in (client, client_end, monitor, monitor_end):
        sock.close()


def test_attach_relay_tty_is_raw_and_the_detach_keys_end_it() -> None:
    monitor, monitor_end = socket.socketpair()
    client, client_end = socket.socketpair()
    monitor_end.sendall(frame(b"1", b"\x1b[0mprompt$ "))
    client_end.sendall(b"ls\x10\x11more")
    result = relay_client(monitor, client, b"", True, True, b"\x10\x11", False)
    assert result.detached and result.status is None
    assert client_end.recv(100) == b"\x1b[0mprompt$ "
    monitor.close()
    assert _read_frames(monitor_end) == [(b"0", b"ls")]
    for sock in (client, client_end, monitor_end):
        sock.close()


def test_exec_relay_pipes_in_frames_and_half_close_is_eof() -> None:
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    client, client_end = socket.socketpair()
    client_end.sendall(b"input")
    client_end.shutdown(socket.SHUT_WR)
    os.write(out_w, b"o")
    os.write(err_w, b"e")
    for fd in (out_w, err_w):
        os.close(fd)
    detached = relay_process(client, b"", stdin_w, {out_r: 1, err_r: 0}, False, b"\x10\x11")
    assert not detached
    assert os.read(stdin_r, 100) == b"input" and os.read(stdin_r, 100) == b""  # closed by the relay: EOF
    client.close()
    assert client_end.recv(100) == multiplexed_frame(1, b"o")  # stream 0: read and dropped
    client_end.close()
    for fd in (stdin_r, out_r, err_r):
        os.close(fd)


def test_launch_runs_fresh_only_when_threads_run() -> None:
    assert not launch._threaded()
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert launch._threaded()
    finally:
        stop.set()
        worker.join()
