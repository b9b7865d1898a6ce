"""Example driver, not a class of the dataset (modules starting with _ are
skipped): a python3 HTTP download, to show the shape of a driver."""
import os

from labkit.session import stop


class HttpExample:
    CLASS = "file_transfer"
    NAME = "example-http"
    PACKAGES = ["python3", "curl"]
    SERVER_IPS = 1

    def run(self, env):
        path = os.path.join(env.workdir, "blob")
        with open(path, "wb") as f:
            f.write(os.urandom(2_000_000))
        srv = env.server(["/usr/bin/python3", "-m", "http.server", "8000", "--bind",
                          env.server_ip, "-d", env.workdir])
        try:
            env.wait_port(8000)
            env.run_client(["curl", "-s", "--limit-rate", "200k", "-o", "/dev/null",
                            f"http://{env.server_ip}:8000/blob"], timeout=env.seconds + 30)
        finally:
            stop([srv])
        return [{"proto": "tcp", "port": 8000, "label": "file_transfer"}]


APPS = [HttpExample]
