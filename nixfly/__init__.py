"""nixfly: build a Nix flake and deploy it to Fly.io (or to local and SSH hosts) from Invoke tasks.

The package holds the logic; ``tasks.py`` and ``noxfile.py`` at the top of the repository are thin tables of
contents that call into it (``commands`` holds the task bodies, ``cli`` the seam with Invoke). The flow:

* ``engine``: one deploy for every target: preflight → lock → build → smoke → bundle, then the target's own
  steps, recorded by ``pipeline``; a failure rolls back, a Ctrl-C never does.
* ``target``: the ``Target`` interface and the one place that picks ``fly`` (Fly.io, through ``flyctl``:
  ``fly/target`` applies, ``fly/observe`` reads, ``fly/plan`` decides, ``fly/verify`` judges) or ``hosts``
  (this machine or SSH hosts: ``hosts/target``, ``hosts/activate`` and what it builds on).
* What the steps use: ``buildhost`` (Nix steps here or on ``--on`` a build host), ``nix``, ``image`` and
  ``skopeo`` (the Docker-free image), ``bundle``/``envfiles``/``secrets`` (credentials), ``lock``, ``probe``
  (health with the release's identity), ``runner``/``remote`` (every external command, here or over SSH).
"""

__version__ = "0.1.0"
