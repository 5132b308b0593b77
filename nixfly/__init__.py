"""nixfly: build a Nix flake and deploy it to Fly.io from Invoke tasks.

The package holds the logic; ``tasks.py`` and ``noxfile.py`` at the top of the repository are thin tables of
contents that call into it. Modules are named for what they know: ``flyctl`` (the flyctl CLI), ``nix`` (the
nix CLI), ``runner`` (running any external command), ``secrets`` (flyctl's import format and change
detection), ``bundle`` (gathering credentials into ``.env.fly``), ``deploy`` (the pipeline).
"""

__version__ = "0.1.0"
