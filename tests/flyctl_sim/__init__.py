"""A stdlib-only simulator of `flyctl` (Fly.io's CLI) for nixfly's tests.

It follows /work/shared/reference/flyctl.md: commands, flags, JSON shapes, error texts and exit codes. State
lives in the directory named by ``FLYCTL_SIM_HOME``; tests set it up and inspect it through
``flyctl_sim.control`` and run the ``bin/flyctl`` / ``bin/fly`` executables as the real tool.
"""
