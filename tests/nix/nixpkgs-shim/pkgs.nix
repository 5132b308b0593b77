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

  # GNU coreutils' programs (nixpkgs' coreutils has them all; Debian's coreutils package too).
  coreutilsTools = [
    "arch" "b2sum" "base32" "base64" "basename" "basenc" "cat" "chgrp" "chmod" "chown" "cksum"
    "comm" "cp" "csplit" "cut" "date" "dd" "df" "dir" "dircolors" "dirname" "du" "echo" "env" "expand"
    "expr" "factor" "false" "fmt" "fold" "groups" "head" "hostid" "id" "install" "join" "link" "ln"
    "logname" "ls" "md5sum" "mkdir" "mkfifo" "mknod" "mktemp" "mv" "nice" "nl" "nohup" "nproc" "numfmt"
    "od" "paste" "pathchk" "pinky" "pr" "printenv" "printf" "ptx" "pwd" "readlink" "realpath" "rm"
    "rmdir" "seq" "sha1sum" "sha224sum" "sha256sum" "sha384sum" "sha512sum" "shred" "shuf" "sleep"
    "sort" "split" "stat" "stdbuf" "stty" "sum" "sync" "tac" "tail" "tee" "test" "timeout" "touch" "tr"
    "true" "truncate" "tsort" "tty" "uname" "unexpand" "uniq" "unlink" "users" "vdir" "wc" "who"
    "whoami" "yes"
  ];

  # bin/ symlinks to host executables, e.g. the host's git or shellcheck.
  hostTools =
    name: tools:
    hostDerivation {
      name = "${name}-host";
      meta.mainProgram = builtins.head tools;
      script = ''
        mkdir -p "$out/bin"
        for tool in ${toString tools}; do
          # type -P: the executable, never a shell builtin of the same name (printf, echo, test).
          path=$(type -P "$tool") || { echo "nixpkgs-shim: host has no '$tool' on $PATH" >&2; exit 1; }
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

  # stdenv's initialPath (nixpkgs pkgs/stdenv/generic/common-path.nix: coreutils findutils diffutils
  # gnused gnugrep gawk gnutar gzip bzip2 gnumake bash patch xz file), linked from the host. With the
  # derivation's own inputs it is ALL a stdenv build finds on PATH (not /usr/bin): a tool missing from
  # nativeBuildInputs fails here as it does with real nixpkgs. bzip2, make, patch, xz and file are
  # linked when the host has them (a fresh Debian may not).
  stdenvInitialPath = hostDerivation {
    name = "stdenv-initial-path-host";
    env = {
      required = coreutilsTools ++ [
        "find"
        "xargs"
        "diff"
        "cmp"
        "sed"
        "grep"
        "awk"
        "tar"
        "gzip"
        "gunzip"
        "zcat"
        "bash"
        "sh"
      ];
      optional = [
        "bzip2"
        "make"
        "patch"
        "xz"
        "file"
      ];
    };
    script = ''
      mkdir -p "$out/bin"
      for tool in $required; do
        path=$(type -P "$tool") || { echo "nixpkgs-shim: host has no '$tool' on $PATH" >&2; exit 1; }
        ln -s "$path" "$out/bin/$tool"
      done
      for tool in $optional; do
        if path=$(type -P "$tool"); then ln -s "$path" "$out/bin/$tool"; fi
      done
    '';
  };

  # The phases of nixpkgs' generic builder (pkgs/stdenv/generic/setup.sh) that flake.nix uses, in the
  # same order with the same switches; what the stand-in does not implement fails the build by name.
  genericBuilder = ''
    set -eu -o pipefail
    export SOURCE_DATE_EPOCH="''${SOURCE_DATE_EPOCH:-315532800}"
    unsupported() {
      echo "nixpkgs-shim: $* is not implemented by the offline stand-in (tests/nix/README.md)" >&2
      exit 1
    }
    # A hook is a shell function of that name, else a string attribute to eval (setup.sh's
    # _callImplicitHook); unset means nothing to do.
    runHook() {
      local hook=$1
      if declare -F "$hook" >/dev/null; then
        "$hook"
      elif [ -n "''${!hook:-}" ]; then
        eval "''${!hook}"
      fi
    }
    stripHash() {
      local base
      base=$(basename "$1")
      if [[ $base =~ ^[0-9a-df-np-sv-z]{32}- ]]; then echo "''${base:33}"; else echo "$base"; fi
    }
    unpackPhase() {
      runHook preUnpack
      if [ -z "''${src:-}" ]; then
        echo 'variable $src or $srcs should point to the source' >&2
        exit 1
      fi
      [ -d "$src" ] || unsupported "unpacking a file src ($src)"
      sourceRoot=$(stripHash "$src")
      cp -pr --reflink=auto -- "$src" "$sourceRoot"
      if [ -z "''${dontMakeSourcesWritable:-}" ]; then chmod -R u+w -- "$sourceRoot"; fi
      runHook postUnpack
    }
    patchPhase() {
      runHook prePatch
      local patch
      for patch in ''${patches:-}; do
        patch ''${patchFlags:--p1} < "$patch"
      done
      runHook postPatch
    }
    configurePhase() {
      runHook preConfigure
      if [ -x ./configure ]; then unsupported "the default configurePhase (./configure)"; fi
      echo "no configure script, doing nothing"
      runHook postConfigure
    }
    buildPhase() {
      runHook preBuild
      if [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]; then unsupported "the default buildPhase (make)"; fi
      echo "no Makefile or custom buildPhase, doing nothing"
      runHook postBuild
    }
    checkPhase() { unsupported "the default checkPhase (make check)"; }
    installPhase() { unsupported "the default installPhase (make install)"; }
    fixupPhase() { unsupported "fixupPhase (patchShebangs, strip, ...; set dontFixup = true)"; }

    if [ -n "''${buildCommandPath:-}" ]; then
      source "$buildCommandPath"
    elif [ -n "''${buildCommand:-}" ]; then
      eval "$buildCommand"
    else
      for phase in unpackPhase patchPhase configurePhase buildPhase checkPhase installPhase fixupPhase; do
        case $phase in
          unpackPhase) [ -z "''${dontUnpack:-}" ] || continue ;;
          patchPhase) [ -z "''${dontPatch:-}" ] || continue ;;
          configurePhase) [ -z "''${dontConfigure:-}" ] || continue ;;
          buildPhase) [ -z "''${dontBuild:-}" ] || continue ;;
          checkPhase) [ -n "''${doCheck:-}" ] || continue ;;
          installPhase) [ -z "''${dontInstall:-}" ] || continue ;;
          fixupPhase) [ -z "''${dontFixup:-}" ] || continue ;;
        esac
        # A phase given as an attribute replaces the default.
        if [ -n "''${!phase:-}" ]; then eval "''${!phase}"; else "$phase"; fi
        if [ "$phase" = unpackPhase ]; then cd "''${sourceRoot:-.}"; fi
      done
    fi
    # Nix 2.8 sometimes SIGKILLs a builder that exits very quickly (NixOS/nix#2176).
    /bin/sleep 0.2 &
  '';

  # stdenvNoCC.mkDerivation with nixpkgs' attribute handling (pkgs/stdenv/generic/make-derivation.nix):
  # every attribute but meta/passthru/pos/env goes to `derivation` unchanged (so outputHash,
  # outputHashMode, outputHashAlgo and impureEnvVars reach Nix as they are, and Nix itself checks a
  # fixed output), `env` is merged in, name is pname-version, md5 output hashes are rejected, and
  # nativeBuildInputs (and buildInputs unless strictDeps) are on PATH before stdenv's initialPath.
  # Not here, and refused by name: finalAttrs functions, __structuredAttrs, outputs other than out.
  mkDerivation =
    arg:
    let
      attrs =
        if builtins.isFunction arg then
          throw "nixpkgs-shim mkDerivation: the (finalAttrs: { ... }) form is not implemented"
        else
          arg;
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      hashAlgo =
        attrs.outputHashAlgo or (builtins.head (builtins.match "([^-:]+)[-:].*" attrs.outputHash));
      env = attrs.env or { };
      nativeBuildInputs = attrs.nativeBuildInputs or [ ];
      buildInputs = attrs.buildInputs or [ ];
      onPath =
        nativeBuildInputs ++ (if attrs.strictDeps or false then [ ] else buildInputs) ++ [ stdenvInitialPath ];
      drv = derivation (
        removeAttrs attrs [
          "meta"
          "passthru"
          "pos"
          "env"
        ]
        // env
        // {
          inherit name system;
          builder = runtimeShell;
          args = [
            "-c"
            genericBuilder
          ];
          PATH = lib.makeBinPath onPath;
          __ignoreNulls = true;
        }
      );
    in
    assert
      attrs ? outputHash -> hashAlgo != "md5" || throw "Rejected insecure ${hashAlgo} hash '${attrs.outputHash}'";
    assert !(attrs.__structuredAttrs or false) || throw "nixpkgs-shim mkDerivation: __structuredAttrs is not implemented";
    assert
      (attrs.outputs or [ "out" ]) == [ "out" ] || throw "nixpkgs-shim mkDerivation: only outputs = [ \"out\" ]";
    drv // (attrs.passthru or { }) // { meta = attrs.meta or { }; };

  # nixpkgs: runCommandWith { stdenv = stdenvNoCC; ... } -> mkDerivation with buildCommand.
  runCommand =
    name: env: buildCommand:
    mkDerivation (
      {
        inherit name buildCommand;
      }
      // env
    );

  # What nixpkgs' mixRelease puts on the release scripts' PATH: coreutils, gnused, gnugrep, gawk.
  releaseRuntimePath = lib.makeBinPath [
    (hostTools "coreutils" coreutilsTools)
    (hostTools "release-text-tools" [
      "sed"
      "grep"
      "awk"
    ])
  ];

  # Python module imported for each python3Packages attribute the flake asks for.
  pythonModules = {
    cyclonedx-python-lib = "cyclonedx";
    fabric = "fabric";
    invoke = "invoke";
    jsonschema = "jsonschema";
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

  stdenvNoCC = {
    inherit mkDerivation;
  };

  coreutils = hostTools "coreutils" coreutilsTools;
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
  # a throwaway HOME; then bin/* wrapped (makeWrapper's `--prefix PATH`, `exec -a "$0"`) with
  # coreutils, sed, grep and awk, as nixpkgs 25.05 does, so the release's scripts run with any PATH.
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
        for program in "$out"/bin/*; do
          [ -f "$program" ] && [ -x "$program" ] || continue
          wrapped="$out/bin/.$(basename "$program")-wrapped"
          mv "$program" "$wrapped"
          printf '%s\n' '#!${runtimeShell}' \
            'export PATH="${releaseRuntimePath}''${PATH:+:$PATH}"' \
            "exec -a \"\$0\" \"$wrapped\" \"\$@\"" > "$program"
          chmod 0555 "$program"
        done
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
