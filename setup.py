"""Build the optional compiled MIPS search and Pathfinder growth loop; everything else is configured in pyproject.toml.

The extension is optional: where it cannot be compiled (no C compiler), the install still succeeds
and lrbench uses its numpy path, which returns the same bytes more slowly.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self):
        # results must round exactly as the numpy/Python paths do: no fused multiply-add, no fast-math
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args += ["-O2", "-ffp-contract=off", "-fno-fast-math"]
                if ext.name.endswith("_pathfinder"):  # its byte loops vectorise
                    ext.extra_compile_args += ["-O3"]
        super().build_extensions()


setup(
    ext_modules=[Extension("lrbench.generators._mips", ["generators/_mips.c"], optional=True),
                 Extension("lrbench.generators._pathfinder", ["generators/_pathfinder.c"], optional=True)],
    cmdclass={"build_ext": BuildExt},
)
