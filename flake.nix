{
  description = "nixfly: one Nix closure holding the Elixir web app, the Bun ai-server and their supervisor";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
  # The dev shell's flyctl only: nixos-25.05 packages 0.3.172, older than what nixfly uses (v0.4.14's secrets
  # quote rules, v0.4.56's release line; flyctl 0.4.x needs Go 1.26, which 25.05 lacks, so no override
  # there). Locked to nixpkgs-unstable of 2026-08-12 (26.11pre1052792.044bfe75bfe4).
  inputs.nixpkgs-flyctl.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    {
      self,
      nixpkgs,
      nixpkgs-flyctl,
    }:
    let
      inherit (nixpkgs) lib;

      forAllSystems = lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      # Darwin cannot build Linux images.
      isLinux = system: lib.hasSuffix "-linux" system;

      version = "0.1.0";

      # A source directory without secrets files (.env, .env.*) or nixfly's state (.nixfly), whatever
      # git tracks: what is built from it reaches the closure, the image and every host, and the store
      # is world-readable. nixfly also refuses to build or deploy while git tracks .env or .env.fly.
      withoutSecrets =
        src:
        lib.cleanSourceWith {
          inherit src;
          name = baseNameOf src;
          filter =
            path: _type:
            let
              base = baseNameOf path;
            in
            !(base == ".env" || lib.hasPrefix ".env." base || base == ".nixfly");
        };
      webSource = withoutSecrets ./web;
      aiServerSource = withoutSecrets ./ai-server;

      # scripts/* keep a shebang so they also run straight from the checkout;
      # writeShellApplication writes its own.
      scriptText =
        path:
        let
          shebang = "#!/usr/bin/env bash\n";
          text = builtins.readFile path;
        in
        assert lib.hasPrefix shebang text;
        lib.removePrefix shebang text;

      packagesFor =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};

          # The raw mix release of web/ (OTP only, no hex deps: no fetchMixDeps needed).
          webRelease = pkgs.beamPackages.mixRelease {
            pname = "web";
            inherit version;
            src = webSource;
          };

          # bin/web: the release in the foreground, runnable from the read-only store.
          webLauncher = pkgs.writeShellApplication {
            name = "web";
            # mktemp; mixRelease already wraps the release's own scripts with coreutils, sed,
            # grep and awk on PATH.
            runtimeInputs = [ pkgs.coreutils ];
            text = ''
              # The store is read-only: the release writes into RELEASE_TMP.
              if [ -z "''${RELEASE_TMP:-}" ]; then
                RELEASE_TMP="$(mktemp -d "''${TMPDIR:-/tmp}/web-release.XXXXXX")"
              fi
              export RELEASE_TMP
              # One node, no clustering: no epmd daemon (it would outlive the BEAM).
              export RELEASE_DISTRIBUTION="''${RELEASE_DISTRIBUTION:-none}"
              # mixRelease deletes releases/COOKIE (secrets stay out of the store).
              if [ -z "''${RELEASE_COOKIE:-}" ]; then
                RELEASE_COOKIE="$(printf '%08x' "$SRANDOM" "$SRANDOM" "$SRANDOM" "$SRANDOM")"
              fi
              export RELEASE_COOKIE
              exec ${webRelease}/bin/web start
            '';
          };

          # ai-server's npm dependencies exactly as ai-server/bun.lock pins them: node_modules from
          # `bun install --frozen-lockfile` (no install scripts, no dev dependencies) in a fixed-output
          # derivation, the one build step with network. Nix checks what it fetched against the hash in
          # ai-server/deps.json, which `inv deps.update` rewrites when bun.lock changes.
          aiServerNodeModules = pkgs.stdenvNoCC.mkDerivation {
            pname = "ai-server-node_modules";
            inherit version;
            # Only what bun install reads: editing the sources fetches nothing.
            src = builtins.path {
              name = "ai-server-lockfile";
              path = ./ai-server;
              filter =
                path: _type:
                builtins.elem (baseNameOf path) [
                  "package.json"
                  "bun.lock"
                  "bunfig.toml"
                  ".npmrc"
                ];
            };
            nativeBuildInputs = [ pkgs.bun ];
            # The registry comes from the caller's environment, as npm and bun users expect (a company
            # mirror: NPM_CONFIG_REGISTRY or BUN_CONFIG_REGISTRY); a fixed-output derivation sees only
            # the variables listed here (with a nix-daemon: the daemon's environment).
            impureEnvVars = lib.fetchers.proxyImpureEnvVars ++ [
              "BUN_CONFIG_REGISTRY"
              "NPM_CONFIG_REGISTRY"
              "npm_config_registry"
            ];
            dontConfigure = true;
            buildPhase = ''
              runHook preBuild
              export HOME="$TMPDIR" BUN_INSTALL_CACHE_DIR="$TMPDIR/bun-cache"
              # Nix passes an impure variable the caller did not set as ""; bun's default registry then.
              for name in BUN_CONFIG_REGISTRY NPM_CONFIG_REGISTRY npm_config_registry; do
                if [ -z "''${!name:-}" ]; then unset "$name"; fi
              done
              bun install --frozen-lockfile --ignore-scripts --production --no-progress
              runHook postBuild
            '';
            installPhase = ''
              runHook preInstall
              mkdir -p "$out" node_modules
              # Not dependencies, and they vary between runs or bun versions: caches tools leave in
              # node_modules, and empty directories (npm tarballs hold none).
              rm -rf node_modules/.cache
              find node_modules -mindepth 1 -type d -empty -delete
              cp -R node_modules "$out/node_modules"
              # The lockfile these came from: the ai-server build compares it with its own.
              cp bun.lock "$out/bun.lock"
              runHook postInstall
            '';
            # Fixup would patch shebangs to store paths, which a fixed-output derivation must not hold.
            dontFixup = true;
            outputHashMode = "recursive";
            outputHashAlgo = "sha256";
            outputHash = (builtins.fromJSON (builtins.readFile ./ai-server/deps.json)).hash;
          };

          # The ai-server sources, their node_modules and bin/ai-server.
          aiServer =
            pkgs.runCommand "ai-server-${version}"
              {
                meta.mainProgram = "ai-server";
                passthru.node_modules = aiServerNodeModules;
              }
              ''
                # Nix reuses a fixed output it already has for the same hash: node_modules from another
                # bun.lock means ai-server/deps.json was not updated. One line, for nixfly to show.
                if ! cmp -s ${./ai-server/bun.lock} ${aiServerNodeModules}/bun.lock; then
                  echo "nixfly-deps-stale: ai-server/bun.lock changed since ai-server/deps.json was written;" \
                    "run: inv deps.update" >&2
                  exit 1
                fi
                mkdir -p "$out/bin" "$out/ai-server"
                cp -R --no-preserve=mode ${aiServerSource}/. "$out/ai-server/"
                rm -rf "$out/ai-server/node_modules"
                ln -s ${aiServerNodeModules}/node_modules "$out/ai-server/node_modules"
                cat > "$out/bin/ai-server" <<EOF
                #!${pkgs.runtimeShell}
                exec ${lib.getExe pkgs.bun} run $out/ai-server/src/index.ts "\$@"
                EOF
                chmod +x "$out/bin/ai-server"
              '';

          # The supervisor; finds web and ai-server on PATH.
          startOneshot = pkgs.writeShellApplication {
            name = "start-oneshot";
            # System tools a program runs go on ITS wrapper's PATH, so the closure carries them
            # (runtimeInputs here; makeWrapper --prefix PATH for a binary). start-oneshot itself needs
            # only bash builtins; coreutils stays for what the services' own scripts call. Never
            # buildInputs, which only the build sees. tests/smoke runs the closure with an empty PATH.
            runtimeInputs = [
              webLauncher
              aiServer
              pkgs.coreutils
            ];
            text = scriptText ./scripts/start-oneshot;
          };

          # What gets deployed: bin/{start-oneshot,web,ai-server}, elixir/ (the release),
          # ai-server/ (the sources).
          oneshotIntegrated =
            pkgs.runCommand "oneshot-integrated-${version}"
              {
                meta.mainProgram = "start-oneshot";
              }
              ''
                mkdir -p "$out/bin"
                ln -s ${startOneshot}/bin/start-oneshot "$out/bin/start-oneshot"
                ln -s ${webLauncher}/bin/web "$out/bin/web"
                ln -s ${aiServer}/bin/ai-server "$out/bin/ai-server"
                ln -s ${webRelease} "$out/elixir"
                ln -s ${aiServer}/ai-server "$out/ai-server"
              '';

          # OCI images without Docker, one per mode: the mode's package, CA certificates, /bin/sh
          # (`fly ssh console` and anything that shells out needs one; nixpkgs' images have none
          # unless asked), a writable /tmp and /data. Push with
          # `skopeo copy docker-archive:<image> docker://…`. Uncompressed
          # archives (`<name>.tar`): skopeo up to 1.9 (Debian 12's) cannot read gzipped
          # docker-archives, and skopeo compresses the layers when it pushes anyway.
          ociImage =
            {
              name,
              package,
              program,
              port,
              env,
            }:
            pkgs.dockerTools.buildLayeredImage {
              inherit name;
              compressor = "none";
              contents = [
                package
                pkgs.dockerTools.caCertificates
                pkgs.dockerTools.binSh
              ];
              extraCommands = ''
                mkdir -m 1777 tmp
                mkdir -p data
              '';
              config = {
                Cmd = [ "${package}/bin/${program}" ];
                Env = [
                  "DATA_DIR=/data"
                  "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
                  "TMPDIR=/tmp"
                  "PORT=${toString port}"
                  "AI_SERVER_PORT=3000"
                  # For the image run by hand; on Fly the fly toml's [env] (claude) wins.
                  "AI_PROVIDER=echo"
                ]
                ++ env;
                ExposedPorts."${toString port}/tcp" = { };
                WorkingDir = "/data";
              };
            };
          ociImages = lib.optionalAttrs (isLinux system) {
            oci-image-integrated = ociImage {
              name = "oneshot";
              package = oneshotIntegrated;
              program = "start-oneshot";
              port = 4000;
              env = [
                "WEB_PORT=4000"
                "AI_SERVER_URL=http://127.0.0.1:3000"
              ];
            };
            oci-image-ai-server = ociImage {
              name = "oneshot-ai-providers";
              package = aiServer;
              program = "ai-server";
              port = 3000;
              env = [ ];
            };
          };
        in
        {
          web = webRelease;
          ai-server = aiServer;
          oneshot-integrated = oneshotIntegrated;
          default = oneshotIntegrated;
        }
        // ociImages;
    in
    {
      packages = forAllSystems packagesFor;

      devShells = forAllSystems (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          python = pkgs.python3.withPackages (ps: [
            ps.invoke
            ps.nox
            ps.fabric
            ps.python-dotenv
            ps.rich
            ps.pytest
            # inv sbom: the CycloneDX model, serializer and schema validator (its json-validation extra).
            ps.cyclonedx-python-lib
            ps.jsonschema
          ]);
        in
        {
          default = pkgs.mkShell {
            packages = [
              python
              nixpkgs-flyctl.legacyPackages.${system}.flyctl
              pkgs.cachix
              pkgs.bun
              pkgs.elixir
              pkgs.skopeo
              pkgs.shellcheck
              pkgs.git
            ];
          };
        }
      );

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixfmt-rfc-style);

      # `nix flake check` builds these; start-oneshot's shellcheck runs inside its build.
      checks = forAllSystems (system: {
        inherit (self.packages.${system}) web ai-server oneshot-integrated;
      });
    };
}
