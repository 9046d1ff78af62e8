"""Packages of the distribution (the metadata is in pyproject.toml).

The themes live in the top-level ``themes/`` folder of the repository (data, not code) and are installed
as ``oc_tui/themes/``, where :mod:`oc_tui.theme_files` finds them; pyproject.toml alone cannot map a
folder outside the packages into one.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["oc_tui*", "embedded_server*"]), "oc_tui.themes"],
    package_dir={"oc_tui.themes": "themes"},
)
