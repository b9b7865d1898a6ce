"""Application drivers.  Each module here lists its driver classes in APPS;
see labkit/session.py for what a driver is."""
import importlib
import pkgutil


def all_apps():
    """name -> driver class, for every module in this package."""
    apps = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module(f"{__name__}.{mod.name}")
        for cls in getattr(m, "APPS", []):
            if cls.NAME in apps:
                raise RuntimeError(f"two drivers named {cls.NAME}")
            apps[cls.NAME] = cls
    return apps
