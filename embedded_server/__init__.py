"""The embedded OpenComputers control plane (`oc-server`) and its host agent (`oc-agent`)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oc-tui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"
