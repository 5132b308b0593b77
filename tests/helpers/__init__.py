"""What the test suites share, in one place: ``project`` (the repository, a fresh checkout running ``inv``
against the flyctl simulator), ``procs`` (processes, ports, waiting), ``registry`` (a real docker-registry),
``sshd`` (a real OpenSSH server and host deploys through the engine), ``smoke`` (launching the closure's
programs), ``sim`` (running the simulator's CLI). Each is imported where needed: nothing here runs on import.
"""
