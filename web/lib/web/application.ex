defmodule Web.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children =
      if Application.get_env(:web, :start_server, true) do
        [{Web.Server, [name: Web.Server] ++ Web.Config.from_env()}]
      else
        []
      end

    Supervisor.start_link(children, strategy: :one_for_one, name: Web.Supervisor)
  end
end
