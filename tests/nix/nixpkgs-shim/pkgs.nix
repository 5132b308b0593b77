# legacyPackages.<system> of the shim: the nixpkgs attributes nixfly's flake.nix uses, with
# nixpkgs' names and argument shapes, built from the HOST toolchain by plain derivations
# (builder /bin/bash, host directories on PATH). Needs `--option sandbox false`, and
# `--option build-users-group ''` so builders run as root and can see a Python under /root.
# Darwin systems evaluate (for `nix flake check`) but cannot be built here.
{ lib, system }:
let
  hostPath = "/usr/local/bin:/usr/bin:/bin";
  runtimeShell = "/bin/bash";

  # The one derivation maker of the shim. `env` becomes the builder's environment; `meta` and
  # `passthru` are attached to the result like nixpkgs' mkDerivation does.
  hostDerivation =
    {
      name,
      script,
      env ? { },
      meta ? { },
      passthru ? { },
    }:
    let
      drv = derivation (
        {
          inherit name system;
          builder = runtimeShell;
          args = [
            "-c"
            ''
              set -euo pipefail
              ${script}
              # Nix 2.8 sometimes SIGKILLs a builder that exits very quickly ("failed due to signal 9",
              # NixOS/nix#2176). A short-lived child holding the log pipe keeps the builder's end ordered.
              /bin/sleep 0.2 &
            ''
          ];
          PATH = hostPath;
        }
        // env
      );
    in
    drv // passthru // { inherit meta; };

  # bin/ symlinks to host executables, e.g. the host's git or shellcheck.
  hostTools =
    name: tools:
    hostDerivation {
      name = "${name}-host";
      meta.mainProgram = builtins.head tools;
      script = ''
        mkdir -p "$out/bin"
        for tool in ${toString tools}; do
          path=$(command -v "$tool") || { echo "nixpkgs-shim: host has no '$tool' on $PATH" >&2; exit 1; }
          ln -s "$path" "$out/bin/$tool"
        done
      '';
    };

  # An output without bin/: stands for a package the host must not (or cannot) replace.
  placeholder =
    name: mainProgram: why:
    hostDerivation {
      name = "${name}-shim-placeholder";
      meta = { inherit mainProgram; };
      env.why = why;
      script = ''
        mkdir -p "$out/share/doc"
        printf '%s\n' "$why" > "$out/share/doc/README"
      '';
    };

  runCommand =
    name: env: buildCommand:
    hostDerivation {
      inherit name;
      script = buildCommand;
      env = removeAttrs env [
        "meta"
        "passthru"
      ];
      meta = env.meta or { };
      passthru = env.passthru or { };
    };

  # Python module imported for each python3Packages attribute the flake asks for.
  pythonModules = {
    fabric = "fabric";
    invoke = "invoke";
    nox = "nox";
    pytest = "pytest";
    python-dotenv = "dotenv";
    rich = "rich";
  };

  # Not used by flake.nix directly: `nix develop` looks up <flake's nixpkgs>.bashInteractive for its
  # shell; dockerTools.binSh links to it, as in nixpkgs.
  bashInteractive = hostTools "bash-interactive" [ "bash" ];

  dockerArchitecture =
    {
      x86_64-linux = "amd64";
      aarch64-linux = "arm64";
    }
    .${system} or "unsupported";
in
{
  inherit bashInteractive runCommand runtimeShell;

  coreutils = hostTools "coreutils" [
    "basename"
    "cat"
    "chmod"
    "cp"
    "cut"
    "date"
    "dirname"
    "env"
    "head"
    "id"
    "ln"
    "ls"
    "mkdir"
    "mktemp"
    "mv"
    "readlink"
    "rm"
    "sleep"
    "sort"
    "tail"
    "tr"
    "uname"
  ];
  elixir = hostTools "elixir" [
    "elixir"
    "elixirc"
    "iex"
    "mix"
  ];
  git = hostTools "git" [ "git" ];
  shellcheck = hostTools "shellcheck" [ "shellcheck" ];
  skopeo = hostTools "skopeo" [ "skopeo" ];

  # Tests put a flyctl SIMULATOR on PATH; a shim flyctl with a bin/ would shadow it inside
  # `nix develop` (the shell's PATH comes before the caller's).
  flyctl = placeholder "flyctl" "flyctl" "nixpkgs-shim: no bin/ on purpose, so the caller's flyctl (real or simulated) stays visible in nix develop.";
  cachix = placeholder "cachix" "cachix" "nixpkgs-shim: no cachix on the host (and no network for a binary cache); the dev shell of real nixpkgs has it.";
  nixfmt-rfc-style = placeholder "nixfmt-rfc-style" "nixfmt" "nixpkgs-shim: no nixfmt on the host; `nix fmt` needs real nixpkgs.";

  # The host's bun binary copied into the store (nixpkgs' bun is a prebuilt binary too).
  bun = hostDerivation {
    name = "bun-host";
    meta.mainProgram = "bun";
    script = ''
      host_bun=$(readlink -f "$(command -v bun)")
      mkdir -p "$out/bin"
      cp "$host_bun" "$out/bin/bun"
      chmod 0555 "$out/bin/bun"
      "$out/bin/bun" --version
    '';
  };

  # Like nixpkgs: copy src somewhere writable, then `mix compile` and
  # `mix release --no-deps-check --path $out` with HEX_OFFLINE=1, deterministic BEAM files and
  # a throwaway HOME. (nixpkgs also wraps bin/* with coreutils/sed/grep/awk on PATH; here the
  # host's PATH already has them.)
  beamPackages.mixRelease =
    {
      pname,
      version,
      src,
      mixEnv ? "prod",
      compileFlags ? [ ],
      removeCookie ? true,
      mixReleaseName ? "",
      meta ? { },
      ...
    }:
    hostDerivation {
      name = "${pname}-${version}";
      inherit meta;
      env = {
        inherit src;
        MIX_ENV = mixEnv;
        HEX_OFFLINE = "1";
        ERL_COMPILER_OPTIONS = "[deterministic]";
        LANG = "C.UTF-8";
        LC_CTYPE = "C.UTF-8";
      };
      script = ''
        export HOME="$TMPDIR" MIX_HOME="$TMPDIR/mix" HEX_HOME="$TMPDIR/hex"
        export REBAR_GLOBAL_CONFIG_DIR="$TMPDIR/rebar3" REBAR_CACHE_DIR="$TMPDIR/rebar3.cache"
        cp -R --no-preserve=mode "$src" "$TMPDIR/source"
        cd "$TMPDIR/source"
        mix deps.compile --no-deps-check --skip-umbrella-children
        mix compile --no-deps-check ${toString compileFlags}
        mix release --no-deps-check --path "$out" ${mixReleaseName}
        rm -f "$out"/bin/*.bat
        ${lib.optionalString removeCookie ''rm -f "$out/releases/COOKIE"''}
      '';
    };

  # Same text as nixpkgs' writeShellApplication (shebang, `set -o` lines, runtimeEnv,
  # PATH prefix), and the build fails on any `bash -n` or shellcheck finding.
  writeShellApplication =
    {
      name,
      text,
      runtimeInputs ? [ ],
      runtimeEnv ? null,
      meta ? { },
      passthru ? { },
      excludeShellChecks ? [ ],
      extraShellCheckFlags ? [ ],
      bashOptions ? [
        "errexit"
        "nounset"
        "pipefail"
      ],
    }:
    hostDerivation {
      inherit name passthru;
      meta = {
        mainProgram = name;
      } // meta;
      env = {
        text =
          ''
            #!${runtimeShell}
            ${lib.concatMapStringsSep "\n" (option: "set -o ${option}") bashOptions}
          ''
          + lib.optionalString (runtimeEnv != null) (
            lib.concatStrings (
              lib.mapAttrsToList (name: value: ''
                ${lib.toShellVar name value}
                export ${name}
              '') runtimeEnv
            )
          )
          + lib.optionalString (runtimeInputs != [ ]) ''

            export PATH="${lib.makeBinPath runtimeInputs}:$PATH"
          ''
          + ''

            ${text}
          '';
        shellcheckFlags =
          (
            if excludeShellChecks == [ ] then
              [ ]
            else
              [
                "--exclude"
                (builtins.concatStringsSep "," excludeShellChecks)
              ]
          )
          ++ extraShellCheckFlags;
      };
      script = ''
        target="$out/bin/${name}"
        mkdir -p "$out/bin"
        printf '%s' "$text" > "$target"
        chmod 0555 "$target"
        bash -n "$target"
        shellcheck $shellcheckFlags "$target" # unquoted: a list of words
      '';
    };

  # `nix develop` re-runs this builder with its own script and dumps the environment; it puts
  # the shell's PATH in front of the caller's. So PATH holds only the packages' bin/ dirs and
  # the caller's tools (e.g. a flyctl simulator) stay visible behind them.
  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      shellHook ? "",
      ...
    }:
    hostDerivation {
      inherit name;
      env = {
        outputs = [ "out" ];
        PATH = lib.makeBinPath (packages ++ buildInputs ++ nativeBuildInputs);
        inherit shellHook;
      };
      script = ''
        echo "This derivation is not meant to be built, only entered with nix develop." >&2
        export > "$out"
      '';
    };

  # python3.withPackages (ps: [ ps.pytest … ]): bin/python and bin/python3 link to the first
  # host interpreter (pyenv's default first) that can import every requested module; the
  # build fails when none can.
  python3.withPackages =
    choose:
    let
      ps = builtins.mapAttrs (pname: module: { inherit pname module; }) pythonModules;
      modules = map (package: package.module) (choose ps);
    in
    hostDerivation {
      name = "python3-host-env";
      meta.mainProgram = "python3";
      env.modules = modules;
      script = ''
        probe='import importlib, os, sys
        for module in sys.argv[1:]:
            importlib.import_module(module)
        print(os.path.realpath(sys.executable))'
        for candidate in /root/.pyenv/shims/python3 /usr/local/bin/python3 /usr/bin/python3; do
          [ -x "$candidate" ] || continue
          if python=$("$candidate" -c "$probe" $modules); then
            mkdir -p "$out/bin"
            ln -s "$python" "$out/bin/python3"
            ln -s "$python" "$out/bin/python"
            exit 0
          fi
        done
        echo "nixpkgs-shim: no host python3 can import: $modules" >&2
        exit 1
      '';
    };

  dockerTools = {
    # The host's CA bundle under the names nixpkgs' caCertificates provides.
    caCertificates = hostDerivation {
      name = "ca-certificates";
      script = ''
        mkdir -p "$out/etc/ssl/certs" "$out/etc/pki/tls/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-bundle.crt"
        ln -s ca-bundle.crt "$out/etc/ssl/certs/ca-certificates.crt"
        ln -s ../../../ssl/certs/ca-bundle.crt "$out/etc/pki/tls/certs/ca-bundle.crt"
      '';
    };

    # /bin/sh in an image, exactly nixpkgs' shape: runCommand "bin-sh" linking bashInteractive's bash.
    binSh = runCommand "bin-sh" { } ''
      mkdir -p $out/bin
      ln -s ${bashInteractive}/bin/bash $out/bin/sh
    '';

    # A docker-archive (`<name>.tar.gz`, or `.tar` with compressor = "none") like nixpkgs':
    # one layer per store path of the closure (the last layer takes the rest beyond
    # maxLayers), then a customisation layer with `contents` linked at / and extraCommands
    # run in it. Tag: the output hash. (nixpkgs also has compressor = "zstd"; not here.)
    buildLayeredImage =
      {
        name,
        compressor ? "gz",
        tag ? null,
        contents ? [ ],
        config ? { },
        extraCommands ? "",
        maxLayers ? 100,
        created ? "1970-01-01T00:00:01Z",
        ...
      }:
      let
        baseName = baseNameOf name;
        contentsList = if builtins.isList contents then contents else [ contents ];
        # A store file, so the paths it mentions (Cmd) join the image closure.
        configJson = runCommand "${baseName}-config.json" {
          json = builtins.toJSON config;
        } ''printf '%s' "$json" > "$out"'';
        roots = [ configJson ] ++ contentsList;
        extension =
          {
            none = "";
            gz = ".gz";
          }
          .${compressor} or (throw "nixpkgs-shim buildLayeredImage: compressor must be none or gz");
        image = hostDerivation {
          name = "${baseName}.tar${extension}";
          passthru = {
            imageName = name;
            imageTag = if tag == null then builtins.substring 0 32 (baseNameOf image.outPath) else tag;
          };
          env = {
            inherit
              compressor
              configJson
              created
              extraCommands
              dockerArchitecture
              ;
            contents = contentsList;
            imageName = name;
            imageTag = if tag == null then "" else tag;
            maxLayers = toString maxLayers;
            exportReferencesGraph = builtins.concatLists (
              builtins.genList (i: [
                "closure-${toString i}"
                (builtins.elemAt roots i)
              ]) (builtins.length roots)
            );
            builderScript = ./docker-archive.py;
          };
          script = ''/usr/bin/python3 "$builderScript"'';
        };
      in
      image;
  };
}
