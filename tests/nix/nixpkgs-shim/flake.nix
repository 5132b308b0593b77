{
  # OFFLINE TEST STAND-IN for nixpkgs, used only as
  #   --override-input nixpkgs path:<repo>/tests/nix/nixpkgs-shim
  # It exposes what nixfly's flake.nix uses (lib + legacyPackages.<system>), with nixpkgs'
  # names and argument shapes, built from the host toolchain. See ../README.md.
  description = "nixfly: offline nixpkgs shim for tests (host toolchain, sandbox off)";

  outputs =
    { self }:
    let
      lib = import ./lib.nix;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs systems (system: import ./pkgs.nix { inherit lib system; });
    };
}
