# The few `nixpkgs.lib` functions nixfly's flake.nix (and this shim) use, with the same names
# and argument order as nixpkgs' lib. Anything not here is deliberately missing: using a new
# lib function in flake.nix fails offline evaluation loudly until it is added here.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    listToAttrs
    map
    match
    replaceStrings
    stringLength
    substring
    ;
in
rec {
  genAttrs =
    names: f:
    listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );

  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);

  optionalAttrs = cond: attrs: if cond then attrs else { };
  optionalString = cond: string: if cond then string else "";
  concatStrings = concatStringsSep "";
  concatMapStringsSep =
    sep: f: list:
    concatStringsSep sep (map f list);

  hasPrefix = prefix: string: substring 0 (stringLength prefix) string == prefix;
  hasSuffix =
    suffix: string:
    let
      start = stringLength string - stringLength suffix;
    in
    start >= 0 && substring start (stringLength suffix) string == suffix;
  removePrefix =
    prefix: string:
    if hasPrefix prefix string then
      substring (stringLength prefix) (stringLength string - stringLength prefix) string
    else
      string;

  # Shell quoting exactly like nixpkgs' lib.escapeShellArg.
  escapeShellArg =
    arg:
    let
      string = toString arg;
    in
    if match "[[:alnum:],._+:@%/-]+" string == null then
      "'${replaceStrings [ "'" ] [ "'\\''" ] string}'"
    else
      string;
  # nixpkgs lib/sources.nix cleanSourceWith, same contract: `{ src, filter ? keep all, name ? null }`
  # and nothing else (an unknown argument is an error, as there); `src` is a path or an earlier
  # result, whose filter still applies (both must accept a file) and whose origin is what gets
  # copied, so chained calls copy once; the name is `name`, else the earlier result's, else
  # "source"; the result is an attribute set whose outPath is `builtins.path` of the origin.
  cleanSourceWith =
    {
      src,
      filter ? _path: _type: true,
      name ? null,
    }:
    let
      earlier = src ? _isLibCleanSourceWith;
      origin = if earlier then src.origSrc else src;
      before = if earlier then src.filter else _path: _type: true;
      both = path: type: filter path type && before path type;
      named = if name != null then name else if earlier then src.name else "source";
    in
    {
      _isLibCleanSourceWith = true;
      origSrc = origin;
      filter = both;
      name = named;
      outPath = builtins.path {
        path = origin;
        name = named;
        filter = both;
      };
    };

  # nixpkgs' toShellVar also handles lists and attrsets; strings are all the flake needs.
  toShellVar = name: value: "${name}=${escapeShellArg value}";

  makeBinPath = packages: concatMapStringsSep ":" (package: "${package}/bin") packages;

  # nixpkgs lib/fetchers.nix, verbatim list: the caller's proxy settings a fixed-output derivation may
  # see through `impureEnvVars`.
  fetchers.proxyImpureEnvVars = [
    "http_proxy"
    "https_proxy"
    "ftp_proxy"
    "all_proxy"
    "no_proxy"
    "HTTP_PROXY"
    "HTTPS_PROXY"
    "FTP_PROXY"
    "ALL_PROXY"
    "NO_PROXY"
    "NIX_SSL_CERT_FILE"
  ];

  # nixpkgs: "${getBin x}/bin/${x.meta.mainProgram or <warning + name>}". The shim insists
  # on meta.mainProgram instead of guessing.
  getExe =
    x:
    "${x}/bin/${
      x.meta.mainProgram or (throw "nixpkgs-shim lib.getExe: ${x.name or "?"} has no meta.mainProgram")
    }";
}
