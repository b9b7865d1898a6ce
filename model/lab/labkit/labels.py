"""Label flows with a session's selectors (see labkit/session.py)."""


def _port_in(port, sel):
    p = sel["port"]
    if isinstance(p, list):
        return p[0] <= port <= p[1]
    return port == p


def label_flow(flow, record):
    """Label of one flow (a `flowpic flows --json` object) of a session."""
    servers = set(record["servers"])
    if flow["src"] in servers:
        server_port = flow["sport"]
    elif flow["dst"] in servers:
        server_port = flow["dport"]
    else:
        return "unlabeled"
    for sel in record["flows"]:
        if sel["proto"] == flow["proto"] and _port_in(server_port, sel):
            return sel["label"]
    return "unlabeled"
