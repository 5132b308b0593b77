defmodule Web.MixProject do
  use Mix.Project

  def project do
    [
      app: :web,
      version: "0.1.0",
      # Debian bookworm ships 1.14; nixpkgs ships 1.17/1.18.
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: [],
      releases: [
        web: [
          include_executables_for: [:unix],
          # No runtime.exs: env vars are read by Web.Config when the app starts,
          # so the release does not need a writable dir to render sys.config.
          applications: [web: :permanent]
        ]
      ]
    ]
  end

  def application do
    [
      # :inets provides :httpc (plain http only, so no :ssl needed).
      extra_applications: [:logger, :inets],
      mod: {Web.Application, []}
    ]
  end
end
