"""Package layout for setuptools (the project's metadata lives in pyproject.toml).

The run-time data stays in the repository's top-level ``assets/`` and ``shaders/`` folders; the wheel maps
them into the package as ``perse/assets`` and ``perse/shaders``, where :mod:`perse.paths` finds them after
a regular install. This mapping is the only reason for this file: ``pyproject.toml`` cannot combine
package discovery with a ``package-dir`` entry for a folder outside the package.
"""

from setuptools import find_packages, setup

DATA_FOLDERS = {"perse.assets": "assets", "perse.shaders": "shaders"}

setup(
    packages=find_packages(include=["perse", "perse.*", "app", "app.*"]) + list(DATA_FOLDERS),
    package_dir=DATA_FOLDERS,
    package_data={
        "perse.assets": ["*.perse", "*.safetensors"],
        "perse.shaders": ["*.vert", "*.frag"],
    },
)
