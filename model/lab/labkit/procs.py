"""The programs a driver starts, as seen from the driver: their output in a
log file, waiting until a server listens, running a client to its end, and
a one-line reason (the log's last lines, the exit status) when one fails.

Helper scripts a driver writes into its workdir and runs in a namespace
with /usr/bin/python3 import labkit too: script() puts the lab's folder
on their sys.path."""
import os
import shutil
import subprocess

from labkit.session import stop

# model/lab: the folder holding labkit (for scripts run in a namespace)
LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    """A log file's text ("" if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def last_line(text):
    """The last non-blank line of text (200 characters at most)."""
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    return lines[-1][:200] if lines else ""


def tail(*paths, proc=None):
    """The last three non-blank lines of the logs, one line; with the
    exit status of proc once it has exited."""
    lines = []
    for p in paths:
        lines += [l.strip() for l in read(p).splitlines() if l.strip()]
    msg = " | ".join(lines[-3:]) or "no output"
    rc = proc.poll() if proc else None
    return f"{msg} (exit {rc})" if rc is not None else msg


def keep_logs(*paths):
    """Copy the logs that exist to $FPLAB_KEEP_LOGS, when it is set (to
    look at a session's programs after its workdir is gone)."""
    dest = os.environ.get("FPLAB_KEEP_LOGS")
    if not dest:
        return
    for p in paths:
        if os.path.exists(p):
            shutil.copy(p, dest)


def script(env, name, body):
    """Write a helper script into the workdir (it finds labkit when run by
    /usr/bin/python3 in a namespace); returns its path."""
    path = os.path.join(env.workdir, name)
    with open(path, "w") as f:
        f.write(f"import sys\nsys.path.insert(0, {LAB_DIR!r})\n" + body)
    return path


def start_server(env, what, args, port, log, proto="tcp", side="server", seconds=10,
                 more_ports=(), more_logs=(), **kw):
    """Start a program in a namespace (the server's by default), its output
    to the file log, and wait until it listens on port (and more_ports,
    same protocol); else stop it and raise with a one-line reason: its
    exit status and the last lines of its log (and of more_logs)."""
    popen = env.server if side == "server" else env.client
    with open(log, "w") as f:
        proc = popen(args, stdout=f, stderr=f, **kw)
    try:
        for p in (port, *more_ports):
            env.wait_port(p, proto=proto, side=side, seconds=seconds)
    except RuntimeError:
        why = "not listening" if proc.poll() is None else f"exit {proc.returncode}"
        stop([proc])
        raise RuntimeError(f"{what} did not start on {proto}/{port} in the {side} namespace "
                           f"({why}: {tail(log, *more_logs)})"[:400])
    return proc


def run_client(env, what, args, log, timeout, done):
    """Run a program in the client namespace to its end, its output to the
    file log; raise unless it exits 0 within timeout having printed done."""
    with open(log, "w") as f:
        proc = env.client(args, stdout=f, stderr=f)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} did not finish in {timeout:.1f} s")
    finally:
        stop([proc])
    if rc != 0 or done not in read(log):
        raise RuntimeError(f"{what} failed: {tail(log, proc=proc)}")


def finish(proc, what, timeout, grace):
    """Wait for a program started with stdout and stderr piped (text): it
    has timeout seconds, then a SIGTERM and grace seconds more.  Returns
    its output's last line; raises with its last error line unless it
    exits 0."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=grace)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {last_line(err) or f'exit {proc.returncode}'}")
    return last_line(out)
