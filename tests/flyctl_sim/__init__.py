"""A stdlib-only simulator of `flyctl` (Fly.io's CLI) for nixfly's tests.

Behaviour comes from flyctl's and fly-go's source (v0.4.87): the file and function each behaviour follows is
named beside it. Where the behaviour is Fly's servers' (the Machines API, GraphQL, Fly Proxy: not open
source), the comment says so and cites where the text or rule was seen (an issue thread, a docs page);
a unit test keeps unsourced marks out. State lives in the directory named by ``FLYCTL_SIM_HOME``; tests
set it up and inspect it through ``flyctl_sim.control`` and run the ``bin/flyctl`` / ``bin/fly``
executables as the real tool.
"""
