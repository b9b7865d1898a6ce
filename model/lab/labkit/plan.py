"""The dataset plan: which sessions to run, fixed by the arguments alone, so
a generation can stop and resume, and two runs with one seed plan the same.

Splits (held out = never trained on):
  test_profile  every session on a TEST_ONLY profile (held-out network conditions)
  test_session  every 5th of the other sessions of each class (held-out sessions)
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
        total, n, kept = 0.0, 0, 0
        held = _h(seed, cls, "s") % 5    # which of every 5 sessions is held out
        while total < minutes_per_class * 60:
            app = apps[n % len(apps)]
            # Consecutive sessions step through every profile, so each class
            # meets every network condition (class and profile must not be
            # confounded); apps and profiles cycle with different periods.
            profile = profiles[(n + _h(seed, cls, "p")) % len(profiles)]
            seconds = rng.randint(min_seconds, max_seconds)
            sid = f"{cls}-{app}-{n:04d}"
            if profile in test_only:
                split = "test_profile"
            else:
                split = "test_session" if kept % 5 == held else "train"
                kept += 1
            plan.append({"id": sid, "class": cls, "app": app, "profile": profile,
                         "seconds": seconds, "seed": _h(seed, sid) % 2**31, "split": split})
            total += seconds
            n += 1
    return plan
