"""The optional C extension; everything else is in pyproject.toml.

``optional=True``: without a C compiler the build warns and goes on, and the recorder runs its
listener in Python (pytest_sqlaperf/capture/listeners.py), with the same results, slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pytest_sqlaperf.capture._speedups",
            ["src/pytest_sqlaperf/capture/_speedups.c"],
            optional=True,
        )
    ]
)
