import Config

# Everything deploy-specific (PORT, AI_SERVER_URL, DATA_DIR) is read from the
# environment when the application starts (see Web.Config), never here.
#
# Tests start their own servers on random ports, so the application itself
# must not bind PORT during `mix test`.
config :web, start_server: config_env() != :test

# Request lines and the start-up line are logged at :info, one line each.
config :logger, level: :info

# This file is evaluated by the Elixir that builds the release, which is also
# the one inside it. Elixir 1.15 replaced the :console backend with a :logger
# handler configured through :default_formatter.
log_format = "$date $time [$level] $message\n"

if Version.match?(System.version(), ">= 1.15.0") do
  config :logger, :default_formatter, format: log_format
else
  config :logger, :console, format: log_format
end
