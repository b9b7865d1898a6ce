"""The dataset plan: which sessions to run, fixed by the arguments alone, so
a generation can stop and resume, and two runs with one seed plan the same.

Splits (held out = never trained on):
  test_profile  every session on a TEST_ONLY profile (held-out network conditions)
  test_session  about 20 % of the other sessions, chosen by hash (held-out sessions)
  train         the rest
"""
import hashlib
import random


def _h(*parts):
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def make_plan(apps_by_class, profiles, test_only, minutes_per_class, seed,
              min_seconds=90, max_seconds=180):
    """List of session dicts: id, class, app, profile, seconds, seed, split."""
    plan = []
    for cls in sorted(apps_by_class):
        apps = sorted(apps_by_class[cls])
        rng = random.Random(_h(seed, cls))
        total, n = 0.0, 0
        while total < minutes_per_class * 60:
            app = apps[n % len(apps)]
            profile = profiles[(n // len(apps) + _h(seed, cls, "p") ) % len(profiles)]
            seconds = rng.randint(min_seconds, max_seconds)
            sid = f"{cls}-{app}-{n:04d}"
            if profile in test_only:
                split = "test_profile"
            elif _h(seed, sid, "split") % 5 == 0:
                split = "test_session"
            else:
                split = "train"
            plan.append({"id": sid, "class": cls, "app": app, "profile": profile,
                         "seconds": seconds, "seed": _h(seed, sid) % 2**31, "split": split})
            total += seconds
            n += 1
    return plan
